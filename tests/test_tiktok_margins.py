"""Margins at TikTok's limits: our init window keeps clear of TikTok's 6 a minute, an init TikTok
refused with 429 (nothing created) is sent again after the window instead of failing the post,
Retry-After is honoured, TikTok's log id is kept for every call, and upload progress after a
refused chunk is read from the answer's Content-Range. The fake TikTok over a real socket."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostStatus, PublishAttempt
from apps.publishing.models import DueJob, JobKind
from apps.publishing.services import post_publish
from apps.tiktok.client import TikTokClient
from apps.tiktok.errors import TikTokError
from apps.tiktok.ratelimit import WINDOW_SECONDS, RateLimiter
from apps.tiktok.uploads import MB, chunk_plan
from tenants.models import Agency
from tests.test_publishing import claim, publish_and_poll, scheduled


def test_the_seventh_init_is_held_past_tikToks_minute_with_a_margin() -> None:
    limiter = RateLimiter(prefix=f"test:{uuid.uuid4().hex}:rl")
    token = f"token-{uuid.uuid4().hex}"
    assert [limiter.try_acquire("init", token) for _ in range(6)] == [0.0] * 6

    wait = limiter.try_acquire("inbox_init", token)  # direct and inbox share TikTok's budget

    assert wait >= WINDOW_SECONDS + 2  # never at the edge of TikTok's window


@pytest.mark.django_db
def test_an_init_refused_with_429_is_sent_again_after_the_window_not_failed(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", "http_429", count=1, retry_after=90)
    before = timezone.now()

    post_publish(post_id=str(post.pk))

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.PUBLISHING and post.last_error_code == "rate_limit_exceeded"
    job = DueJob.objects.get(post_id=post.pk, kind=JobKind.PUBLISH)
    assert job.due_at >= before + dt.timedelta(seconds=90)  # TikTok's Retry-After, not sooner

    # When the job comes back (its time brought forward), the dispatcher hands it out and init goes out again
    DueJob.objects.filter(pk=job.pk).update(due_at=timezone.now() - dt.timedelta(seconds=1))
    done = publish_and_poll(claim(post))

    assert done.status == PostStatus.PUBLISHED
    inits = list(
        PublishAttempt.objects.filter(post=done, kind=AttemptKind.INIT)
        .order_by("started_at")
        .values_list("http_status", "outcome")
    )
    assert inits == [(429, AttemptOutcome.RETRYABLE), (None, AttemptOutcome.OK)]
    assert len(tiktok.create_post_calls()) == 2  # the refused one created nothing


@pytest.mark.django_db
def test_tiktoks_log_id_is_kept_for_calls_that_succeeded_and_for_upload_errors(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    tiktok.add_fault("upload", "http_5xx", count=1, status=503)

    done = publish_and_poll(claim(scheduled(tiktok)), polls=10)

    assert done.status == PostStatus.PUBLISHED
    attempts = PublishAttempt.objects.filter(post=done).exclude(kind=AttemptKind.WEBHOOK)
    assert attempts.count() >= 4
    assert not attempts.filter(log_id="").exists()
    failed = attempts.get(kind=AttemptKind.UPLOAD, outcome=AttemptOutcome.RETRYABLE)
    assert failed.log_id and failed.http_status == 503


def test_a_refused_chunk_says_how_far_the_upload_got(tiktok: FakeTikTok) -> None:
    client = TikTokClient(limiter=None, timeout=5.0)
    token = str(tiktok.issue_tokens("fake-open-public-001")["access_token"])
    plan = chunk_plan(25 * MB)  # two chunks: 10 MB and 15 MB
    init = client.init_direct_post(
        access_token=token,
        post_info={"privacy_level": "SELF_ONLY", "title": "t"},
        source_info=plan.source_info(),
    )
    (first_start, first_end), (second_start, second_end) = plan.ranges()
    data = b"\1" * plan.video_size

    def put(first: int, last: int) -> int:
        return client.upload_chunk(
            upload_url=init.upload_url,
            data=data[first : last + 1],
            first=first,
            last=last,
            total=plan.video_size,
            content_type="video/mp4",
        )

    with pytest.raises(TikTokError) as early:
        put(second_start, second_end)
    assert (early.value.code, early.value.received_bytes) == ("upload_range_mismatch", 0)
    assert early.value.log_id

    assert put(first_start, first_end) == 206
    with pytest.raises(TikTokError) as again:
        put(first_start, first_end)  # sent twice, as by a worker that died before recording it
    assert again.value.received_bytes == first_end + 1
