"""Factories for tenant models; use them inside an agency's schema."""

from __future__ import annotations

import datetime as dt
import hashlib

import factory
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.analytics.models import AccountSnapshot
from apps.posts.models import Post, PostMedia, PostStatus, PrivacyLevel
from apps.users.models import Role, User
from tests.mp4 import mp4_bytes


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@agency.example")
    name = factory.Faker("name")
    role = Role.EDITOR
    password = factory.django.Password("a-long-test-password-42")


class TikTokAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TikTokAccount

    open_id = factory.Sequence(lambda n: f"open-id-{n:06d}")
    username = factory.Sequence(lambda n: f"creator{n}")
    display_name = factory.Faker("name")
    client_label = factory.Faker("company")
    granted_scopes = factory.LazyFunction(
        lambda: [
            "user.info.basic",
            "user.info.profile",
            "user.info.stats",
            "video.list",
            "video.publish",
            "video.upload",
        ]
    )
    access_token = factory.Sequence(lambda n: f"act.example-access-token-{n:04d}")
    refresh_token = factory.Sequence(lambda n: f"rft.example-refresh-token-{n:04d}")
    access_expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=2))
    refresh_expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=180))


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    account = factory.SubFactory(TikTokAccountFactory)
    caption = factory.Faker("sentence")
    privacy_level = PrivacyLevel.PUBLIC_TO_EVERYONE
    status = PostStatus.SCHEDULED
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))
    schedule_time_zone = "Europe/Paris"


class PostMediaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostMedia

    file = "posts/video/example.mp4"
    size_bytes = 1_000_000
    mime_type = "video/mp4"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())


class AccountSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountSnapshot

    account = factory.SubFactory(TikTokAccountFactory)
    date = factory.LazyFunction(lambda: timezone.localdate())
    followers = 1000


def video_of_size(size: int) -> bytes:
    """A 12-second 1080×1920 H.264 MP4 (tests/mp4.py) of exactly `size` bytes, which TikTok's
    processing (the fake's too) takes."""  # noqa: RUF002
    bare = len(mp4_bytes())
    if size < bare:
        raise ValueError(f"A test video has at least {bare} bytes.")
    return mp4_bytes(padding=size - bare)


def ready_post(
    fake: object, *, open_id: str = "fake-open-public-001", size: int = 1_500_000, **post: object
) -> Post:
    """A post ready to publish: an account with live tokens at the fake, a video on disk.

    Create it inside an agency's schema; the video is real bytes in the agency's media folder.
    """
    from django.core.files.base import ContentFile

    tokens = fake.issue_tokens(open_id)  # type: ignore[attr-defined]
    account = TikTokAccount.objects.filter(open_id=open_id).first() or TikTokAccountFactory(
        open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
    )
    values: dict[str, object] = {"account": account, "scheduled_at": timezone.now()}
    values.update(post)
    instance = PostFactory(**values)
    data = video_of_size(size)
    media = PostMedia(
        post=instance,
        size_bytes=len(data),
        mime_type="video/mp4",
        sha256=hashlib.sha256(data).hexdigest(),
        original_name="clip.mp4",
        duration_seconds=12,
        width=1080,
        height=1920,
        frame_rate=30,
        video_codec="H.264",
        probed_at=timezone.now(),
    )
    media.file.save("clip.mp4", ContentFile(data), save=True)
    return instance
