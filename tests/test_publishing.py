"""The publishing pipeline: claim, publish once, follow the status, and tell a person why not."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostStatus, PublishAttempt
from apps.posts.services import PostStateError, post_cancel, post_mark_published, post_retry, post_schedule
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.models import DueJob
from apps.publishing.services import post_poll_status, post_publish
from tenants.models import Agency
from tests.conftest import wait_for
from tests.factories import ready_post


def scheduled(fake: FakeTikTok, **post: Any) -> Post:
    draft = ready_post(fake, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="", **post)
    return post_schedule(post=draft, scheduled_at=timezone.now(), time_zone="Europe/Paris", by=None)


def claim(post: Post) -> Post:
    """Run the dispatcher (in this schema's transaction) and return the post as it left it."""
    schema = connection.schema_name
    dispatched = dispatch_due()
    connection.set_schema(schema)
    assert [d.post_id for d in dispatched] == [str(post.pk)]
    return Post.objects.get(pk=post.pk)


def init_sent(post: Post, **answer: Any) -> PublishAttempt:
    """The row a run writes before it sends init, with what TikTok answered (none: no answer yet)."""
    return PublishAttempt.objects.create(
        post=post, attempt_number=1, kind=AttemptKind.INIT, started_at=timezone.now(), **answer
    )


def publish_and_poll(post: Post, polls: int = 20) -> Post:
    post_publish(post_id=str(post.pk))
    for _ in range(polls):
        post = Post.objects.get(pk=post.pk)
        if post.status != PostStatus.PROCESSING and (
            post.status != PostStatus.PUBLISHED or post.published_post_id
        ):
            break
        import time

        time.sleep(0.2)
        post_poll_status(post_id=str(post.pk))
    return Post.objects.get(pk=post.pk)


@pytest.mark.django_db
def test_a_due_post_is_published_once_with_its_tiktok_id(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok, size=25_000_000))  # chunks of 10 MB and 15 MB (the last absorbs the rest)
    assert post.status == PostStatus.PUBLISHING

    post = publish_and_poll(post)

    assert post.status == PostStatus.PUBLISHED
    assert len(post.published_post_id) == 19 and post.published_at is not None
    assert len(tiktok.create_post_calls()) == 1
    kinds = list(PublishAttempt.objects.filter(post=post).values_list("kind", flat=True))
    assert kinds[:2] == [AttemptKind.CREATOR_INFO, AttemptKind.INIT]
    assert kinds.count(AttemptKind.UPLOAD) == 2
    received = tiktok.publish(post.publish_id)
    assert received["received_bytes"] == 25_000_000
    assert received["sha256"] == post.media.get().sha256  # TikTok got exactly our video
    assert not DueJob.objects.filter(post_id=post.pk).exists()


@pytest.mark.django_db
def test_final_errors_fail_with_a_reason_and_are_not_retried(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", "spam_risk", count=1)

    post_publish(post_id=str(post.pk))

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.FAILED
    assert post.last_error_message.startswith(
        f"{post.account} has reached TikTok's daily posting limit (about 15 posts a day"
    )
    assert not DueJob.objects.filter(post_id=post.pk).exists()
    assert dispatch_due() == []
    assert len(tiktok.create_post_calls()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["timeout", "drop", "http_5xx"])
def test_unknown_outcome_of_init_goes_to_a_person_never_to_a_retry(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, settings: Any, fault: str
) -> None:
    settings.TIKTOK_TIMEOUT_SECONDS = 0.5
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", fault, count=1, delay=1.0)

    post_publish(post_id=str(post.pk))
    post_publish(post_id=str(post.pk))  # a redelivered message changes nothing

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.NEEDS_ATTENTION
    assert "never learned whether it did" in post.last_error_message
    assert len(tiktok.create_post_calls()) == 1
    assert dispatch_due() == []


@pytest.mark.django_db
def test_a_worker_that_died_after_init_leaves_the_post_to_a_person(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given an init call that was recorded as started, and nothing after it (the worker died)
    post = claim(scheduled(tiktok))
    init_sent(post)

    post_publish(post_id=str(post.pk))

    assert Post.objects.get(pk=post.pk).status == PostStatus.NEEDS_ATTENTION
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_a_worker_that_died_after_a_refused_init_fails_the_post_without_sending_init_again(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given an init TikTok refused (its settings), and a worker killed before it settled the post
    post = claim(scheduled(tiktok))
    init_sent(post, outcome=AttemptOutcome.FINAL, http_status=400, error_code="invalid_param")

    # When the message is delivered again
    post_publish(post_id=str(post.pk))

    # Then the post fails with what to do, and TikTok is not asked to create it again
    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.FAILED
    assert post.last_error_message == "TikTok rejected the post's settings."
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_a_worker_that_died_after_a_rate_limited_init_sends_it_again(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given an init TikTok refused with 429 (nothing created), and a worker killed before it settled
    post = claim(scheduled(tiktok))
    init_sent(post, outcome=AttemptOutcome.RETRYABLE, http_status=429, error_code="rate_limit_exceeded")

    # When the message is delivered again
    post = publish_and_poll(post)

    # Then init goes out once more and the post is published
    assert post.status == PostStatus.PUBLISHED
    assert len(tiktok.create_post_calls()) == 1


@pytest.mark.django_db
def test_a_worker_that_died_after_a_5xx_init_leaves_the_post_to_a_person(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # A 5xx answer to init may come after TikTok created the post, whatever code it carries
    post = claim(scheduled(tiktok))
    init_sent(post, outcome=AttemptOutcome.NEEDS_REAUTH, http_status=503, error_code="access_token_invalid")

    post_publish(post_id=str(post.pk))

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.NEEDS_ATTENTION
    assert "never learned whether it did" in post.last_error_message
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_a_person_resolves_needs_attention(in_alpha: Agency, tiktok: FakeTikTok, media_root: Path) -> None:
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", "drop", count=1)
    post_publish(post_id=str(post.pk))
    with pytest.raises(PostStateError, match="19 digits"):
        post_mark_published(post=post, published_post_id="123", by=None)

    retried = post_retry(post=post, by=None)
    assert retried.status == PostStatus.SCHEDULED and retried.publish_id == ""
    post = publish_and_poll(claim(retried))
    assert post.status == PostStatus.PUBLISHED
    assert len(tiktok.create_post_calls()) == 2  # the deliberate retry, and nothing else


@pytest.mark.django_db
def test_expired_token_mid_publish_is_refreshed_without_restarting(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    tiktok.expire_access_token(post.account.access_token.reveal())

    post = publish_and_poll(post)

    assert post.status == PostStatus.PUBLISHED
    assert len([c for c in tiktok.calls if c["endpoint"] == "token"]) == 1
    assert len(tiktok.create_post_calls()) == 1
    reauth = PublishAttempt.objects.filter(post=post, outcome=AttemptOutcome.NEEDS_REAUTH)
    assert reauth.count() == 1


@pytest.mark.django_db
def test_retryable_failure_before_init_backs_off(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    tiktok.add_fault("creator_info", "http_429", count=1)

    post_publish(post_id=str(post.pk))

    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.PUBLISHING and post.last_error_code == "rate_limit_exceeded"
    job = DueJob.objects.get(post_id=post.pk)
    assert job.due_at > timezone.now() and job.leased_until is None
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_upload_resumes_from_tiktoks_progress(in_alpha: Agency, tiktok: FakeTikTok, media_root: Path) -> None:
    post = claim(scheduled(tiktok, size=25_000_000))  # 10 MB + 15 MB chunks
    tiktok.add_fault("upload", "http_5xx", count=1, status=503)

    post = publish_and_poll(post)

    assert post.status == PostStatus.PUBLISHED
    uploads = PublishAttempt.objects.filter(post=post, kind=AttemptKind.UPLOAD)
    assert list(uploads.values_list("outcome", flat=True)) == ["retryable", "ok", "ok"]


@pytest.mark.django_db
def test_suspended_agency_and_disconnected_account_do_not_publish(
    in_alpha: Agency, alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    TikTokAccount.objects.filter(pk=post.account_id).update(status="revoked", status_reason="Disconnected.")
    post_publish(post_id=str(post.pk))
    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.FAILED and "Reconnect" in post.last_error_message

    other = claim(scheduled(tiktok, open_id="fake-open-private-002", privacy_level="FOLLOWER_OF_CREATOR"))
    Agency.objects.filter(pk=alpha.pk).update(status="suspended")
    connection.set_schema(alpha.schema_name)
    post_publish(post_id=str(other.pk))
    other = Post.objects.get(pk=other.pk)
    assert other.status == PostStatus.FAILED and "suspended" in other.last_error_message
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_reschedule_after_claim_is_refused_with_a_message(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    with pytest.raises(PostStateError, match="is publishing and can no longer be rescheduled"):
        post_schedule(
            post=post, scheduled_at=timezone.now() + dt.timedelta(hours=1), time_zone="UTC", by=None
        )
    with pytest.raises(PostStateError, match="can no longer be cancelled"):
        post_cancel(post=post, by=None)


@pytest.mark.django_db
def test_scheduling_in_the_past_is_refused(in_alpha: Agency, tiktok: FakeTikTok, media_root: Path) -> None:
    draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    with pytest.raises(PostStateError, match="already passed"):
        post_schedule(
            post=draft, scheduled_at=timezone.now() - dt.timedelta(minutes=5), time_zone="UTC", by=None
        )
    assert not DueJob.objects.filter(post_id=draft.pk).exists()


@pytest.mark.django_db
def test_cancel_and_reschedule_win_before_the_claim(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    cancelled = scheduled(tiktok)
    post_cancel(post=cancelled, by=None)
    later = scheduled(tiktok)
    post_schedule(post=later, scheduled_at=timezone.now() + dt.timedelta(hours=2), time_zone="UTC", by=None)
    assert dispatch_due() == []
    connection.set_schema("alpha")
    assert Post.objects.get(pk=cancelled.pk).status == PostStatus.CANCELLED
    assert Post.objects.get(pk=later.pk).status == PostStatus.SCHEDULED


# --- Concurrency, on committed data ---


def test_two_dispatchers_never_claim_the_same_post(
    make_agency: Any, tiktok: FakeTikTok, media_root: Path, broker_namespace: str, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        ids = {str(scheduled(tiktok, size=1000).pk) for _ in range(40)}
    claims: list[str] = []
    barrier = threading.Barrier(2)

    def dispatcher() -> None:
        with django_db_blocker.unblock():
            barrier.wait()
            while batch := dispatch_due(limit=3):
                claims.extend(d.post_id for d in batch)
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claims) == sorted(ids)  # every post once, none twice
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        assert set(Post.objects.values_list("status", flat=True)) == {PostStatus.PUBLISHING}


def test_cancel_racing_the_claim_has_one_winner(
    make_agency: Any, tiktok: FakeTikTok, media_root: Path, broker_namespace: str, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        posts = [scheduled(tiktok, size=1000) for _ in range(15)]
    claimed: set[str] = set()
    refused: set[str] = set()
    barrier = threading.Barrier(2)

    def dispatch() -> None:
        with django_db_blocker.unblock():
            barrier.wait()
            while batch := dispatch_due(limit=1):
                claimed.update(d.post_id for d in batch)
            connection.close()

    def cancel() -> None:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            barrier.wait()
            for post in reversed(posts):
                try:
                    post_cancel(post=post, by=None)
                except PostStateError:
                    refused.add(str(post.pk))
        connection.close()

    threads = [threading.Thread(target=dispatch), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        statuses = dict(Post.objects.values_list("pk", "status"))
    for post in posts:
        pid, status = str(post.pk), statuses[post.pk]
        if pid in claimed:
            assert status == PostStatus.PUBLISHING and pid in refused
        else:
            assert status == PostStatus.CANCELLED and pid not in refused
    assert claimed and len(claimed) < len(posts)  # both sides won some


def test_scheduled_post_is_published_by_the_real_worker_and_scheduler(
    make_agency: Any,
    tiktok: FakeTikTok,
    media_root: Path,
    worker: Any,
    scheduler: Any,
    django_db_blocker: Any,
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
        due = timezone.now() + dt.timedelta(seconds=2)
        post_schedule(post=draft, scheduled_at=due, time_zone="Europe/Paris", by=None)

    def published() -> Post | None:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            post = Post.objects.get(pk=draft.pk)
        return post if post.published_post_id else None

    post = wait_for(published, timeout=40)
    assert post.status == PostStatus.PUBLISHED and post.claimed_at >= due
    # How late it goes out is measured by `make bench` (bench/publishing.py), not timed here: a test
    # process starting slowly on a loaded machine is not a late post.
    assert len(tiktok.create_post_calls()) == 1
