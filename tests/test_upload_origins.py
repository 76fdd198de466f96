"""TikTok's upload URL is used only on origins the settings allow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.posts.services import post_schedule
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.services import post_publish
from tenants.models import Agency
from tests.factories import ready_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def elsewhere(tiktok: FakeTikTok) -> Iterator[str]:
    """The fake hands out upload URLs on another origin than its API's (as TikTok does)."""
    origin = tiktok.base_url.replace("127.0.0.1", "localhost")
    tiktok.configure(upload_origin=origin)
    yield origin
    tiktok.configure(upload_origin="")


def _publish(tiktok: FakeTikTok, schema: str) -> Post:
    draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    post = post_schedule(post=draft, scheduled_at=timezone.now(), time_zone="UTC", by=None)
    dispatch_due()
    connection.set_schema(schema)
    post_publish(post_id=str(post.pk))
    return Post.objects.get(pk=post.pk)


def test_a_video_is_never_sent_to_an_upload_origin_the_settings_do_not_allow(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, elsewhere: str, settings: Any
) -> None:
    # Given TikTok's init answers an upload URL on an origin not in TIKTOK_UPLOAD_ORIGINS
    settings.TIKTOK_UPLOAD_ORIGINS = ["https://open-upload.tiktokapis.com"]

    # When the worker publishes a post
    post = _publish(tiktok, in_alpha.schema_name)

    # Then not a byte went there, and the post says why in words
    assert post.status == PostStatus.FAILED
    assert "upload address Postline does not send videos to" in post.last_error_message
    assert not [c for c in tiktok.calls if c["endpoint"] == "upload"]
    assert tiktok.publish(post.publish_id)["received_bytes"] == 0


def test_an_allowed_upload_origin_is_used(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, elsewhere: str, settings: Any
) -> None:
    settings.TIKTOK_UPLOAD_ORIGINS = ["https://open-upload.tiktokapis.com", elsewhere]

    post = _publish(tiktok, in_alpha.schema_name)

    assert post.status == PostStatus.PROCESSING
    assert tiktok.publish(post.publish_id)["received_bytes"] == post.media.get().size_bytes
