"""Following a post after TikTok has it: the status checks never undo a result TikTok gave,
and stop when there is nothing more to learn. The fake TikTok over a real socket."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostStatus, PrivacyLevel, PublishAttempt, PublishMode
from apps.publishing.models import DueJob, JobKind
from apps.publishing.services import post_poll_status
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.test_publishing import claim, publish_and_poll, scheduled

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_moderation(tiktok: FakeTikTok) -> Iterator[FakeTikTok]:
    """The fake TikTok taking an hour to make a post public (the session's fake is shared)."""
    before = tiktok.state.config.publicly_available_seconds
    tiktok.configure(publicly_available_seconds=3600)
    yield tiktok
    tiktok.configure(publicly_available_seconds=before)


def published_without_public_id(fake: FakeTikTok, **post: object) -> Post:
    """A post TikTok reported PUBLISH_COMPLETE, still waiting for its public id (moderation)."""
    post_obj = publish_and_poll(claim(scheduled(fake, **post)), polls=10)
    assert (post_obj.status, post_obj.published_post_id) == (PostStatus.PUBLISHED, "")
    assert DueJob.objects.filter(post_id=post_obj.pk, kind=JobKind.POLL).exists()
    return post_obj


def test_a_published_post_whose_later_check_is_refused_stays_published(
    in_alpha: Agency, slow_moderation: FakeTikTok, media_root: Path
) -> None:
    tiktok = slow_moderation
    post = published_without_public_id(tiktok)
    tiktok.add_fault("status", "error", status=400, code="invalid_publish_id", count=1)

    post_poll_status(post_id=str(post.pk))

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.PUBLISHED and post.last_error_code == ""
    assert not DueJob.objects.filter(post_id=post.pk).exists()  # the search for its id ended
    assert len(tiktok.create_post_calls()) == 1


def test_a_published_post_stays_published_when_its_token_can_no_longer_be_refreshed(
    in_alpha: Agency, slow_moderation: FakeTikTok, media_root: Path
) -> None:
    tiktok = slow_moderation
    post = published_without_public_id(tiktok)
    tiktok.add_fault("status", "error", status=401, code="access_token_invalid", count=1)
    tiktok.add_fault("token", "error", status=400, code="invalid_grant", count=1)

    post_poll_status(post_id=str(post.pk))

    post = Post.objects.select_related("account").get(pk=post.pk)
    assert post.status == PostStatus.PUBLISHED
    assert post.account.status == "needs_reauth"  # the account tells its own story
    assert not DueJob.objects.filter(post_id=post.pk).exists()


@pytest.mark.parametrize(
    "post",
    [
        {"privacy_level": PrivacyLevel.SELF_ONLY},
        {"privacy_level": PrivacyLevel.MUTUAL_FOLLOW_FRIENDS},
        {"mode": PublishMode.INBOX},
    ],
    ids=["self-only", "friends", "inbox"],
)
def test_a_post_that_never_becomes_public_is_checked_no_more_after_completion(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, post: dict[str, str]
) -> None:
    done = publish_and_poll(claim(scheduled(tiktok, **post)), polls=10)
    assert done.status == PostStatus.PUBLISHED

    checks = PublishAttempt.objects.filter(post=done, kind=AttemptKind.STATUS).count()
    assert not DueJob.objects.filter(post_id=done.pk).exists()
    time.sleep(0.8)  # past the fake's publicly_available_seconds: nothing more is asked
    assert PublishAttempt.objects.filter(post=done, kind=AttemptKind.STATUS).count() == checks


def test_an_inbox_post_reads_as_a_draft_in_the_creators_inbox_without_settings_tiktok_never_got(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    done = publish_and_poll(claim(scheduled(tiktok, mode=PublishMode.INBOX)), polls=10)
    assert done.status == PostStatus.PUBLISHED
    owner = client_for(in_alpha)
    assert (
        owner.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )

    page = html.unescape(owner.get(f"/posts/{done.pk}/").content.decode())
    listing = html.unescape(owner.get("/posts/").content.decode())

    assert ">In the creator's inbox</span>" in page and ">In the creator's inbox</span>" in listing
    assert ">Published</span>" not in page
    # The inbox takes only the video: no privacy or switches are shown as if TikTok had them.
    assert "Who can see it" not in page and "Duet" not in page
    assert "Chosen by the creator in TikTok" in page
