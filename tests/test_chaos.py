"""Chaos: 200 posts due at once while TikTok misbehaves, workers are killed and Redis restarts.

Afterwards every post must be published, failed with a reason, or waiting for a person;
none left publishing or due; and TikTok saw at most one create-post call per post.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostStatus, PublishAttempt
from apps.posts.services import post_schedule
from apps.publishing.models import DueJob
from apps.tiktok.errors import NOT_SENT_CODES
from tests.conftest import process_env
from tests.factories import ready_post
from tests.servers import PrivateRedis, kill_group
from tests.servers import start_process as start

CREATORS = {  # open_id → a privacy level it offers
    "fake-open-public-001": "PUBLIC_TO_EVERYONE",
    "fake-open-private-002": "FOLLOWER_OF_CREATOR",
    "fake-open-nocomment-003": "MUTUAL_FOLLOW_FRIENDS",
    "fake-open-nearcap-004": "SELF_ONLY",
}
AGENCIES = 5
POSTS_PER_ACCOUNT = 10  # 5 agencies x 4 accounts x 10 = 200 posts
FINAL = {PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION}


@pytest.mark.chaos
def test_chaos(
    make_agency: Any,
    tiktok: FakeTikTok,
    media_root: Path,
    broker_namespace: str,
    django_db_blocker: Any,
    tmp_path: Path,
) -> None:
    # Given 200 posts across 5 agencies, all due now
    tiktok.configure(daily_post_cap=10_000)
    agencies = [make_agency() for _ in range(AGENCIES)]
    expected: dict[str, str] = {}
    with django_db_blocker.unblock():
        for agency in agencies:
            with schema_context(agency.schema_name):
                for open_id, privacy in CREATORS.items():
                    for n in range(POSTS_PER_ACCOUNT):
                        post = ready_post(
                            tiktok,
                            open_id=open_id,
                            size=6_000_000 if n % 3 == 0 else 300_000,
                            status=PostStatus.DRAFT,
                            scheduled_at=None,
                            schedule_time_zone="",
                            privacy_level=privacy,
                            caption=f"chaos {agency.slug} {open_id} {n}",
                        )
                        post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)
                        expected[str(post.pk)] = agency.schema_name
    assert len(expected) == 200

    # And a TikTok that answers 10% of calls with 429/5xx, some slowly, and lets some inits time out
    tiktok.add_fault("*", "http_429", rate=0.05)
    tiktok.add_fault("*", "http_5xx", rate=0.05)
    tiktok.add_fault("*", "slow", rate=0.05, delay=0.4)
    tiktok.add_fault("init", "timeout", rate=0.03, delay=2.5)

    redis = PrivateRedis(tmp_path)
    redis.start()
    env = process_env(
        tiktok,
        broker_namespace,
        REDIS_URL=redis.url,
        DRAMATIQ_BROKER_URL=redis.url,
        TIKTOK_TIMEOUT_SECONDS="2",
        PUBLISH_LEASE_SECONDS="8",
        POLL_LEASE_SECONDS="4",
        # Backoffs of seconds, not production's minutes (as the fault suite's): as many retries,
        # sooner. What still takes a minute is TikTok's init window (6 a minute per creator).
        PUBLISH_PREPARE_BACKOFF="1,2,3,5,8",
        PUBLISH_POLL_BACKOFF="1,1,2,2,3,5",
    )
    scheduler = start(["manage.py", "run_scheduler", "--interval", "0.25"], env)
    worker_argv = ["-m", "dramatiq", "config.worker", "--processes", "2", "--threads", "4"]
    worker = start(worker_argv, env)

    def statuses() -> Counter[str]:
        counts: Counter[str] = Counter()
        with django_db_blocker.unblock():
            for agency in agencies:
                with schema_context(agency.schema_name):
                    counts.update(Post.objects.values_list("status", flat=True))
        return counts

    # When workers are killed mid-run and Redis restarts once
    try:
        started = time.monotonic()
        for round_ in range(4):
            time.sleep(6)
            kill_group(worker)
            if round_ == 1:
                redis.kill()
                redis.start()
            worker = start(worker_argv, env)
        while time.monotonic() - started < 240:
            counts = statuses()
            if set(counts) <= FINAL:
                break
            time.sleep(1)
    finally:
        kill_group(worker, signal.SIGTERM)
        kill_group(scheduler, signal.SIGTERM)
        redis.kill()
        tiktok.clear_faults()
        tiktok.configure(daily_post_cap=15)

    # Then every post is published, failed with a reason, or waiting for a person
    counts = statuses()
    print(f"chaos outcome: {dict(counts)} in {time.monotonic() - started:.0f}s")
    assert set(counts) <= FINAL, counts
    # Most go out despite the faults (how many depends on where the faults land: each init that
    # times out or gets a 5xx is, rightly, left to a person).
    assert counts[PostStatus.PUBLISHED] >= 100
    with django_db_blocker.unblock():
        inits: Counter[str] = Counter()
        for agency in agencies:
            with schema_context(agency.schema_name):
                assert not Post.objects.filter(status=PostStatus.FAILED, last_error_message="").exists()
                assert not Post.objects.filter(
                    status=PostStatus.NEEDS_ATTENTION, last_error_message=""
                ).exists()
                # Inits TikTok refused with 429 created nothing and are sent again after the window.
                sent = (
                    PublishAttempt.objects.filter(kind=AttemptKind.INIT)
                    .exclude(error_code__in=NOT_SENT_CODES)
                    .exclude(http_status=429)
                )
                inits.update(str(p) for p in sent.values_list("post_id", flat=True))
        assert not DueJob.objects.filter(post_id__in=list(expected), kind="publish").exists()
    # At most one create-post call per post, seen from TikTok's side (the caption names the post)
    titles = Counter(c.get("title") for c in tiktok.create_post_calls(rate_limited=False))
    doubles = [title for title, n in titles.items() if n > 1]
    assert titles and not doubles, explain(doubles, tiktok, agencies, django_db_blocker)
    assert max(inits.values()) == 1


def explain(titles: list[Any], fake: FakeTikTok, agencies: list[Any], blocker: Any) -> str:
    """What we and TikTok recorded for the posts that were created twice."""
    lines = []
    with blocker.unblock():
        for title in titles:
            calls = [
                (round(c["time"], 2), c["status"])
                for c in fake.create_post_calls()
                if c.get("title") == title
            ]
            lines.append(f"{title}: TikTok saw {calls}")
            for agency in agencies:
                with schema_context(agency.schema_name):
                    for attempt in PublishAttempt.objects.filter(post__caption=title).order_by("started_at"):
                        when = attempt.started_at.timestamp()
                        lines.append(
                            f"   {when:.2f} #{attempt.attempt_number} {attempt.kind} "
                            f"{attempt.outcome} {attempt.http_status} {attempt.error_code}"
                        )
    return "\n".join(lines)
