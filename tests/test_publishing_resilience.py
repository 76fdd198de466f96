"""Publishing keeps going through a lost database connection, a Redis outage on our side and
a worker whose clock is off. (The full fault suite, with servers that restart, is test_faults.)"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.common.expressions import db_now
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostStatus, PublishAttempt
from apps.posts.services import post_schedule
from apps.publishing.models import DueJob
from apps.publishing.services import post_publish
from apps.tiktok.client import TikTokClient
from apps.tiktok.ratelimit import RateLimiter
from tenants.models import Agency
from tests.conftest import process_env, wait_for
from tests.factories import ready_post
from tests.servers import PrivateRedis, faketime_env, kill_group, start_process
from tests.test_publishing import claim

WORKER = ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "1"]


def schedule(fake: FakeTikTok, *, in_seconds: float = 0.0, **post: Any) -> Post:
    draft = ready_post(fake, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="", **post)
    due = timezone.now() + dt.timedelta(seconds=in_seconds)
    return post_schedule(post=draft, scheduled_at=due, time_zone="UTC", by=None)


def published(blocker: Any, agency: Agency, post: Post) -> Post | None:
    with blocker.unblock(), schema_context(agency.schema_name):
        fresh = Post.objects.get(pk=post.pk)
    return fresh if fresh.status == PostStatus.PUBLISHED else None


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Any]:
    """Start worker/scheduler processes (logs under tmp_path); all are stopped after the test."""
    started: list[Any] = []

    def start(argv: list[str], env: dict[str, str], name: str) -> Path:
        log = tmp_path / f"{name}.log"
        started.append(start_process(argv, env, log=log))
        return log

    yield start
    for process in started:
        kill_group(process)


def test_workers_and_dispatcher_replace_connections_the_database_cut(
    make_agency: Any,
    tiktok: FakeTikTok,
    media_root: Path,
    broker_namespace: str,
    django_db_blocker: Any,
    processes: Any,
) -> None:
    # Given a worker thread and the dispatcher that have each used their connection
    agency = make_agency()
    env = process_env(tiktok, broker_namespace, LOG_LEVEL="INFO")
    processes(WORKER, env, "worker")
    scheduler_log = processes(["manage.py", "run_scheduler", "--interval", "0.2"], env, "scheduler")
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        first = schedule(tiktok)
    wait_for(lambda: published(django_db_blocker, agency, first), timeout=40)

    # When the database cuts every connection but ours (as a restart does) and a post falls due
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 2  # the worker thread's and the dispatcher's
        with schema_context(agency.schema_name):
            second = schedule(tiktok, in_seconds=1)

    # Then it is published within seconds by the same processes, without a failed dispatcher tick
    post = wait_for(lambda: published(django_db_blocker, agency, second), timeout=30)
    assert post.claimed_at is not None
    assert len(tiktok.create_post_calls()) == 2
    said = scheduler_log.read_text()
    assert "Scheduler tick failed" not in said, said


@pytest.mark.django_db
def test_redis_lost_between_creator_info_and_init_is_a_retry_not_an_unknown_outcome(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path, tmp_path: Path
) -> None:
    # Given a claimed post, and our rate limiter's Redis that goes away while creator_info is answered
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    client = TikTokClient(max_wait=5.0, limiter=RateLimiter(redis.Redis.from_url(redis_server.url)))
    post = claim(schedule(tiktok))
    tiktok.add_fault("creator_info", "slow", count=1, delay=1.0)
    killer = threading.Timer(0.3, redis_server.kill)
    killer.start()

    # When the worker reaches init
    try:
        post_publish(post_id=str(post.pk), client=client)
    finally:
        killer.join()

    # Then nothing went to TikTok and the post waits for a retry after a backoff, not for a person
    post = Post.objects.get(pk=post.pk)
    assert tiktok.create_post_calls() == []
    assert post.status == PostStatus.PUBLISHING
    assert post.last_error_code == "rate_limiter_unavailable"
    assert "nothing was sent to TikTok" in post.last_error_message
    job = DueJob.objects.get(post_id=post.pk)
    assert job.due_at > db_now() and job.leased_until is None

    # And once Redis is back, the retry publishes it with one create-post call
    redis_server.start()
    try:
        # (when its backoff is over the dispatcher hands the job out again)
        DueJob.objects.filter(pk=job.pk).update(due_at=db_now())
        claim(post)
        post_publish(post_id=str(post.pk), client=client)
    finally:
        redis_server.kill()
    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.PROCESSING and post.publish_id
    assert len(tiktok.create_post_calls()) == 1


@pytest.mark.parametrize("skew", [300, -300], ids=["ahead", "behind"])
def test_a_worker_with_its_clock_off_keeps_the_database_clock(
    skew: int,
    make_agency: Any,
    tiktok: FakeTikTok,
    media_root: Path,
    broker_namespace: str,
    django_db_blocker: Any,
    processes: Any,
) -> None:
    # Given a worker whose clock is 5 minutes off, and a post whose creator_info fails twice
    agency = make_agency()
    env = process_env(tiktok, broker_namespace)  # backoff before init: 1 s, 1 s, 2 s...
    processes(WORKER, {**env, **faketime_env(skew)}, "worker")
    processes(["manage.py", "run_scheduler", "--interval", "0.2"], env, "scheduler")
    tiktok.add_fault("creator_info", "http_5xx", count=2)
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        post = schedule(tiktok, in_seconds=1)

    # Then it is published within seconds of its time, each retry after its backoff
    post = wait_for(lambda: published(django_db_blocker, agency, post), timeout=40)
    [init] = tiktok.create_post_calls()
    late = float(init["time"]) - post.scheduled_at.timestamp()  # the fake's clock is right
    assert 0 <= late < 15, late
    tries = [float(c["time"]) for c in tiktok.calls if c["endpoint"] == "creator_info"]
    assert len(tries) == 3
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    # And what the worker recorded is on the database's clock, not its own
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        attempts = PublishAttempt.objects.filter(post=post, kind=AttemptKind.CREATOR_INFO)
        for attempt in attempts:
            assert abs(attempt.started_at.timestamp() - tries[0]) < 30
        assert post.published_at is not None
        assert abs(post.published_at.timestamp() - float(init["time"])) < 30
