"""Pre-flight: a video TikTok would refuse is refused when a person uploads or schedules it, with a
sentence naming the problem, instead of failing at TikTok an hour later (issue 12, item 5).

TikTok's rules (TIKTOK_API.md, "Caps and limits"): MP4/MOV/WebM, H.264/H.265/VP8/VP9, 23-60 fps,
360-4096 px per side, at most the creator's max_video_post_duration_sec, at most 4 GB. The fake
TikTok's processing refuses the same (tests/test_fake_tiktok.py); here nothing reaches it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.fake_tiktok.creators import CREATORS_BY_OPEN_ID
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostMedia, PostStatus
from apps.posts.services import PostStateError, post_schedule
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.jobs import job_set
from apps.publishing.models import DueJob, JobKind
from apps.publishing.services import post_publish
from apps.users.models import User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, ready_post
from tests.mp4 import mp4_bytes, webm_bytes
from tests.test_composer import (
    NO_COMMENT,
    by_id,
    compose_data,
    connect,
    field_error,
    find,
    html,
    text,
    upload,
    uploaded_id,
)

pytestmark = pytest.mark.django_db

EXPORT_AGAIN = "Export it again as MP4 with H.264 video (most editors call it “H.264” or “High quality MP4”)."
FPS_120 = (
    "The video has 120 frames per second; TikTok accepts 23 to 60. "
    "Export it again at 30 frames per second (or 24, 25, 50 or 60)."
)


@pytest.fixture
def owner(alpha: Agency) -> Client:
    client = client_for(alpha)
    signed_in = client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    assert signed_in.status_code == 302
    return client


def legacy_video(data: bytes, *, name: str = "old.mp4", **facts: Any) -> PostMedia:
    """A video stored before codec and frame rate were kept: in storage, its row without them."""
    media = PostMedia(
        size_bytes=len(data),
        mime_type="video/mp4",
        sha256=hashlib.sha256(data).hexdigest(),
        original_name=name,
        duration_seconds=Decimal(12),
        width=1080,
        height=1920,
        **facts,
    )
    media.file.save(name, ContentFile(data), save=True)
    return media


# --- At upload ---


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (mp4_bytes(fps=120), FPS_120),
        (
            mp4_bytes(fps=15),
            "The video has 15 frames per second; TikTok accepts 23 to 60. "
            "Export it again at 30 frames per second (or 24, 25, 50 or 60).",
        ),
        (
            mp4_bytes(codec=b"apcn", brand=b"qt  "),
            f"The video is encoded as ProRes; TikTok accepts H.264, H.265, VP8 or VP9 video. {EXPORT_AGAIN}",
        ),
        (
            mp4_bytes(codec=b"mp4v"),
            "The video is encoded as MPEG-4 Visual; TikTok accepts H.264, H.265, VP8 or VP9 video. "
            f"{EXPORT_AGAIN}",
        ),
        (
            webm_bytes(codec=b"V_AV1"),
            f"The video is encoded as AV1; TikTok accepts H.264, H.265, VP8 or VP9 video. {EXPORT_AGAIN}",
        ),
        (
            mp4_bytes(width=1080, height=4100),
            "The video is 1080×4100 pixels; TikTok needs between 360 and 4,096 pixels on each side.",  # noqa: RUF001
        ),
    ],
    ids=["120fps", "15fps", "prores", "mpeg4-part2", "webm-av1", "4100-high"],
)
def test_an_upload_tiktok_would_refuse_is_refused_with_what_is_wrong(
    alpha: Agency, owner: Client, data: bytes, message: str
) -> None:
    response = upload(owner, data)

    assert response.status_code == 400
    page = html(response)
    assert text(by_id(page, "video-error")) == message
    assert not find(page, "input", name="media_id")
    with schema_context(alpha.schema_name):
        assert not PostMedia.all_objects.exists()


def test_an_accepted_upload_shows_and_keeps_its_codec_and_frame_rate(alpha: Agency, owner: Client) -> None:
    response = upload(owner, mp4_bytes(fps=23.976, codec=b"hvc1"), name="film.mp4")

    assert response.status_code == 201
    summary = text(by_id(html(response), "media-summary"))
    assert "1080×1920 pixels, H.265 at 23.98 frames per second" in summary  # noqa: RUF001
    with schema_context(alpha.schema_name):
        media = PostMedia.objects.get()
        assert (media.video_codec, media.frame_rate) == ("H.265", Decimal("23.976"))
        assert media.probed_at is not None


# --- At scheduling ---


def test_scheduling_a_video_stored_before_these_checks_probes_it_once_and_refuses_it(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a 120 fps video uploaded before codec and frame rate were checked
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        media = legacy_video(mp4_bytes(fps=120), created_by=User.objects.get(email="owner@shared.example"))

    # When the person schedules a post with it
    response = owner.post("/posts/new/", compose_data(account, str(media.pk)))

    # Then it is refused next to the video, saying why, and nothing is scheduled or sent
    assert response.status_code == 200
    assert field_error(html(response), "field-video", "id_video") == FPS_120
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.exists() and not DueJob.objects.exists()
        media.refresh_from_db()
        assert (media.video_codec, media.frame_rate) == ("H.264", Decimal("120.000"))
        assert media.probed_at is not None
    assert tiktok.create_post_calls(account.open_id) == []

    # A draft may keep it (nothing goes to TikTok)
    saved = owner.post("/posts/new/", compose_data(account, str(media.pk), action="draft"))
    assert saved.status_code == 302
    with schema_context(alpha.schema_name):
        assert Post.objects.get().status == PostStatus.DRAFT


def test_scheduling_checks_the_duration_against_this_creators_maximum(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a 200-second video uploaded before an account was chosen (no maximum known then)
    media_id = uploaded_id(owner, mp4_bytes(duration=200))
    account = connect(alpha, tiktok, NO_COMMENT)  # its creator may post at most 3 minutes

    response = owner.post("/posts/new/", compose_data(account, media_id, allow_comment=None))

    assert response.status_code == 200
    nickname = CREATORS_BY_OPEN_ID[NO_COMMENT].display_name
    assert field_error(html(response), "field-video", "id_video") == (
        f"The video lasts 3 min 20 s; {nickname} can post videos of at most 3 min."
    )
    with schema_context(alpha.schema_name):
        assert not DueJob.objects.exists()


def test_rescheduling_a_post_whose_video_tiktok_would_refuse_is_refused(
    in_alpha: Agency, tiktok: FakeTikTok
) -> None:
    post = PostFactory(status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    media = legacy_video(mp4_bytes(codec=b"apcn", brand=b"qt  "))
    PostMedia.objects.filter(pk=media.pk).update(post=post)

    with pytest.raises(PostStateError) as refused:
        post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)

    assert str(refused.value) == (
        "TikTok would refuse this post's video. The video is encoded as ProRes; TikTok accepts H.264, "
        f"H.265, VP8 or VP9 video. {EXPORT_AGAIN} Open the post to choose another video."
    )
    assert not DueJob.objects.exists()


# --- At publish: what was scheduled before the checks ---


def test_a_post_scheduled_before_the_checks_fails_with_the_reason_and_tiktok_never_sees_it(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post scheduled (before these checks existed) with a 120 fps video TikTok refuses
    post = ready_post(tiktok)
    old = PostMedia.objects.get(post=post)
    data = mp4_bytes(fps=120)
    old.file.save("clip.mp4", ContentFile(data), save=False)
    PostMedia.objects.filter(pk=old.pk).update(
        file=old.file.name, size_bytes=len(data), frame_rate=None, video_codec="", probed_at=None
    )
    Post.objects.filter(pk=post.pk).update(status=PostStatus.SCHEDULED)
    job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_at=timezone.now())

    # When the worker takes it
    dispatch_due()
    connection.set_schema(in_alpha.schema_name)
    post_publish(post_id=str(post.pk))

    # Then it fails at once with the sentence, and no create-post call reached TikTok
    failed = Post.objects.get(pk=post.pk)
    assert failed.status == PostStatus.FAILED
    assert failed.last_error_message == f"TikTok would refuse the video, so nothing was sent. {FPS_120}"
    assert tiktok.create_post_calls(post.account.open_id) == []
