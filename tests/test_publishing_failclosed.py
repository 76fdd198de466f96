"""Background work fails closed: a message whose agency cannot be chosen, or is not active,
never runs, and nothing it would have done happens anywhere; a message that does not match its
post's state changes nothing; a worker keeps its job while it makes progress."""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.tasks import accounts_sync_stats
from apps.analytics.models import AccountSnapshot
from apps.common.expressions import db_in, db_now
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostStatus, PublishAttempt
from apps.posts.services import post_schedule
from apps.publishing.dispatcher import MAX_SENDS, dispatch_due
from apps.publishing.jobs import job_renew, job_take
from apps.publishing.leases import Held, LeaseLost
from apps.publishing.models import DueJob
from apps.publishing.services import post_publish
from apps.users.models import User
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import Agency
from tenants.services import agency_suspend
from tests.conftest import process_env, wait_for
from tests.factories import TikTokAccountFactory, ready_post
from tests.procs.probe_actors import probe_add_member
from tests.test_publishing import claim, scheduled


def dead_letter_ids(queue: str) -> list[str]:
    broker: Any = dramatiq.get_broker()
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.XQ.msgs")
    return [dramatiq.Message.decode(value).message_id for value in raw]


def users_named(email: str, django_db_blocker: Any) -> dict[str, int]:
    """Where a user with this email exists: schema → count, over the public schema and every agency."""
    found: dict[str, int] = {}
    with django_db_blocker.unblock():
        schemas = ["public", *Agency.objects.values_list("schema_name", flat=True)]
        for schema in schemas:
            with schema_context(schema):
                if n := User.objects.filter(email=email).count():
                    found[schema] = n
        connection.set_schema_to_public()
    return found


@pytest.fixture
def probe_worker(broker_namespace: str, fake_tiktok: FakeTikTok) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker for the probe queue whose queries give up on a lock after 0.3 s."""
    env = process_env(fake_tiktok, broker_namespace, PGOPTIONS="-c lock_timeout=300")
    modules = ["config.worker", "tests.procs.probe_actors"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            *modules,
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            "probe",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield process
    process.terminate()
    process.wait(timeout=15)


def test_an_error_while_choosing_the_agency_runs_nothing_until_a_retry_can(
    make_agency: Any, probe_worker: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    email = f"probe-{uuid.uuid4().hex[:8]}@agency.example"
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE relation = 'public.tenants_agency'::regclass AND NOT granted"
    )
    with django_db_blocker.unblock(), transaction.atomic(), connection.cursor() as cursor:
        # Given the agency table locked, so the worker's agency check fails (lock timeout)
        cursor.execute("LOCK TABLE public.tenants_agency IN ACCESS EXCLUSIVE MODE")
        probe_add_member.send_with_options(args=(email,), **{SCHEMA_OPTION: agency.schema_name})

        # When the worker's check waits for the lock and gives up
        def count() -> int:
            cursor.execute(waiting)
            return int(cursor.fetchone()[0])

        wait_for(lambda: count() == 1, timeout=30)
        wait_for(lambda: count() == 0, timeout=10)

        # Then the job did not run, in no schema
        assert users_named(email, django_db_blocker) == {}
    # And once the check can succeed, the retry runs the job in its own agency, and only there
    wait_for(lambda: users_named(email, django_db_blocker), timeout=30)
    assert users_named(email, django_db_blocker) == {agency.schema_name: 1}


def test_a_suspended_agencys_jobs_are_refused_and_never_reach_tiktok(
    make_agency: Any, tiktok: FakeTikTok, worker: Any, django_db_blocker: Any
) -> None:
    # Given a suspended agency with a connected account, and an active one
    suspended, active = make_agency(), make_agency()
    accounts = {}
    for agency, open_id in ((suspended, "fake-open-public-001"), (active, "fake-open-private-002")):
        tokens = tiktok.issue_tokens(open_id)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            accounts[agency.slug] = TikTokAccountFactory(
                open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
            )
    with django_db_blocker.unblock():
        agency_suspend(agency=suspended)

    # When a stats sync is queued for each
    refused = accounts_sync_stats.send_with_options(
        args=(str(accounts[suspended.slug].pk),), **{SCHEMA_OPTION: suspended.schema_name}
    )
    accounts_sync_stats.send_with_options(
        args=(str(accounts[active.slug].pk),), **{SCHEMA_OPTION: active.schema_name}
    )

    # Then the suspended agency's is dead-lettered without calling TikTok or writing anything
    wait_for(lambda: refused.message_id in dead_letter_ids("stats"), timeout=30)
    with django_db_blocker.unblock():
        with schema_context(active.schema_name):
            wait_for(lambda: AccountSnapshot.objects.exists(), timeout=30)
        with schema_context(suspended.schema_name):
            assert not AccountSnapshot.objects.exists()
    callers = {c.get("open_id") for c in tiktok.calls if c["endpoint"] == "user_info"}
    assert "fake-open-public-001" not in callers


# --- Messages that do not match the post ---


@pytest.mark.django_db
def test_an_early_or_replayed_publish_message_changes_nothing(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post scheduled ten minutes ahead
    draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    later = timezone.now() + dt.timedelta(minutes=10)
    post = post_schedule(post=draft, scheduled_at=later, time_zone="UTC", by=None)

    # When a publish message for it arrives now (early, replayed or forged)
    post_publish(post_id=str(post.pk))

    # Then it is still scheduled for its time, its job still waits for that time, TikTok heard nothing
    assert Post.objects.get(pk=post.pk).status == PostStatus.SCHEDULED
    job = DueJob.objects.get(post_id=post.pk)
    assert job.due_at == later and job.leased_until is None
    assert tiktok.calls == []

    # And a post waiting out a backoff is not tried again before its time by a replayed message
    backing_off = claim(
        scheduled(tiktok, open_id="fake-open-private-002", privacy_level="FOLLOWER_OF_CREATOR")
    )
    tiktok.add_fault("creator_info", "http_429", count=1)
    post_publish(post_id=str(backing_off.pk))
    retry_at = DueJob.objects.get(post_id=backing_off.pk).due_at
    calls = len(tiktok.calls)
    post_publish(post_id=str(backing_off.pk))
    assert len(tiktok.calls) == calls
    assert DueJob.objects.get(post_id=backing_off.pk).due_at == retry_at


# --- Leases ---


@pytest.mark.django_db
def test_a_message_waiting_in_a_long_queue_is_not_counted_as_an_interruption(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, settings: Any
) -> None:
    # Given a due post whose message waits behind a long queue, sent again each time its lease runs out
    settings.PUBLISH_LEASE_SECONDS = 0
    post = scheduled(tiktok)
    for _ in range(MAX_SENDS + 2):
        claim(post)

    # Then it is not handed to a person: no worker ever started on it
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    settings.PUBLISH_LEASE_SECONDS = 30  # (the worker that takes it holds a lease it can renew)
    post_publish(post_id=str(post.pk))
    assert Post.objects.get(pk=post.pk).status == PostStatus.PROCESSING
    assert len(tiktok.create_post_calls()) == 1


def test_a_long_upload_keeps_its_job_and_a_stopped_worker_loses_it(
    make_agency: Any,
    tiktok: FakeTikTok,
    media_root: Path,
    settings: Any,
    broker_namespace: str,
    django_db_blocker: Any,
) -> None:
    # Given a 2-second lease and a 20 MB video (two 10 MB chunks) that TikTok receives so slowly
    # that each chunk streams for 3 s, longer than the lease
    settings.PUBLISH_LEASE_SECONDS = 2
    # (The uploaded post's first status check is put off past the test: due 3 s after the upload
    # as by default, on a loaded machine it fell due in the tick that hands the stopped job out.)
    settings.PUBLISH_POLL_BACKOFF = [600]
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        post = scheduled(tiktok, size=20_000_000)
    with django_db_blocker.unblock():
        assert [d.post_id for d in dispatch_due()] == [str(post.pk)]
    tiktok.add_fault("upload", "slow_receive", delay=0.3)

    # When a worker publishes it while the dispatcher keeps ticking
    def publish() -> None:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            post_publish(post_id=str(post.pk))
        connection.close()

    worker = threading.Thread(target=publish)
    worker.start()
    handed_out = []
    with django_db_blocker.unblock():
        while worker.is_alive():
            handed_out += dispatch_due()
            time.sleep(0.2)
    worker.join()

    # Then the job was never handed to another worker, and the upload went through once
    assert handed_out == []
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        assert Post.objects.get(pk=post.pk).status == PostStatus.PROCESSING
        uploads = PublishAttempt.objects.filter(post=post, kind=AttemptKind.UPLOAD)
        assert list(uploads.values_list("outcome", flat=True)) == ["ok"] * 2
    assert len(tiktok.create_post_calls()) == 1

    # And a worker that took a job and stopped loses it once its lease runs out
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        stopped = scheduled(tiktok, open_id="fake-open-private-002", privacy_level="FOLLOWER_OF_CREATOR")
    with django_db_blocker.unblock():
        assert [d.post_id for d in dispatch_due()] == [str(stopped.pk)]
        with schema_context(agency.schema_name):
            assert job_take(post_id=stopped.pk, kind="publish", lease_seconds=2)
        connection.set_schema_to_public()
        again = wait_for(dispatch_due, timeout=10)
    assert [d.post_id for d in again] == [str(stopped.pk)]


@pytest.mark.django_db
def test_only_the_run_holding_a_job_renews_its_lease(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post whose job the dispatcher handed out, taken by a worker
    post = scheduled(tiktok)
    claim(post)
    first = job_take(post_id=post.pk, kind="publish", lease_seconds=0.5)
    assert first is not None and first.start == 1

    # Then no other worker takes it while that worker's lease runs, and that worker renews it
    assert job_take(post_id=post.pk, kind="publish", lease_seconds=0.5) is None
    assert job_renew(first)

    # When the worker stops renewing and the dispatcher hands the job to another worker
    time.sleep(0.6)
    claim(post)
    second = job_take(post_id=post.pk, kind="publish", lease_seconds=30)
    assert second is not None and second.start == 2

    # Then the first worker can no longer renew the lease, and the second keeps it
    leased_until = DueJob.objects.get(post_id=post.pk).leased_until
    assert not job_renew(first)
    assert DueJob.objects.get(post_id=post.pk).leased_until == leased_until
    assert job_renew(second)
    # And a message for the post that comes meanwhile changes nothing: the job is the second worker's
    post_publish(post_id=str(post.pk))
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    assert tiktok.create_post_calls() == []


@pytest.mark.django_db
def test_a_worker_says_when_its_lease_was_renewed_late_and_how_late_it_ran_out(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a run holding a 2 s lease
    post = scheduled(tiktok)
    claim(post)
    lease = job_take(post_id=post.pk, kind="publish", lease_seconds=2)
    assert lease is not None
    held = Held(lease)
    caplog.set_level(logging.INFO, logger="apps.publishing.leases")

    def said() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "apps.publishing.leases"]

    # When it renews on time, nothing is said
    held.renew_now()
    assert not said()

    # When it renews after more than half the lease, the log says how late (the lease still held,
    # with 0.9 s to spare for a loaded machine)
    time.sleep(1.1)
    held.renew_now()
    [late] = said()
    assert late.levelno == logging.WARNING
    gap = re.search(
        rf"post {post.pk} was renewed (\d+\.\d)s after the last renewal \(the lease is 2s\)",
        late.getMessage(),
    )
    assert gap is not None and float(gap[1]) >= 1.1, late.getMessage()

    # And once the lease ran out, the run stops and the log says how long after its last renewal
    time.sleep(3.0)  # (a second past the lease: room for a renewal that landed late)
    with pytest.raises(LeaseLost):
        held.renew_now()
    ran_out = re.search(r"ran out (\d+\.\d)s after its last renewal", said()[-1].getMessage())
    assert ran_out is not None and float(ran_out[1]) >= 3.0


@pytest.mark.django_db
def test_a_message_waiting_in_a_long_queue_is_sent_again_less_and_less_often(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, settings: Any
) -> None:
    # Given a due post whose message no worker takes: each time its lease runs out, it is sent again
    settings.PUBLISH_LEASE_SECONDS = 10
    post = scheduled(tiktok)

    def send_after_its_lease() -> int:
        DueJob.objects.filter(post_id=post.pk).update(leased_until=db_in(-1))
        claim(post)
        return round((DueJob.objects.get(post_id=post.pk).leased_until - db_now()).total_seconds())

    # Then the queue is not flooded with copies: each copy waits twice as long as the one before
    assert [send_after_its_lease() for _ in range(5)] == [10, 20, 40, 80, 80]

    # And once a worker took it, the job is handed to another one lease after that worker stopped
    assert job_take(post_id=post.pk, kind="publish", lease_seconds=10) is not None
    assert send_after_its_lease() == 10
