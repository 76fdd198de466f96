"""Notifications with real processes: the scheduler and a Dramatiq worker publish posts at the fake
TikTok (which fails some and leaves others unknown), the worker is SIGKILLed twice meanwhile, and
every failed or needs-attention post still tells each recipient exactly once in the app, and by
email at least once and at most twice (the worker prints emails: development's console backend)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.fake_tiktok.server import FakeTikTok
from apps.notifications.models import Channel, Notification, Status
from apps.posts.models import Post, PostStatus
from apps.posts.services import post_schedule
from apps.users.models import Role, User
from tests.conftest import OWNER_PASSWORD, process_env
from tests.factories import ready_post
from tests.servers import kill_group, start_process

POSTS = 14
TOLD = {PostStatus.FAILED: "post_failed", PostStatus.NEEDS_ATTENTION: "post_needs_attention"}


def test_each_failed_post_tells_each_recipient_once_through_worker_kills(
    make_agency: Any, tiktok: FakeTikTok, broker_namespace: str, django_db_blocker: Any, tmp_path: Path
) -> None:
    # Given an agency whose editor scheduled posts on an account a manager also manages, and an
    # editor of the agency without access to that account
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        author = User.objects.create_user("author@committed.example", OWNER_PASSWORD, role=Role.EDITOR)
        manager = User.objects.create_user("manager@committed.example", OWNER_PASSWORD, role=Role.MANAGER)
        User.objects.create_user("outsider@committed.example", OWNER_PASSWORD, role=Role.EDITOR)
        posts = []
        for n in range(POSTS):
            post = ready_post(
                tiktok,
                size=300_000,
                status=PostStatus.DRAFT,
                scheduled_at=None,
                created_by=author,
                caption=f"n{n}",
            )
            posts.append(post)
        for person in (author, manager):
            access_set(user=person, account=posts[0].account, perms=ROLE_DEFAULTS[person.role], by=None)
        for post in posts:
            post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)
    # and a TikTok that refuses some inits, answers others with a 5xx (outcome unknown), slowly
    tiktok.add_fault("init", "spam_risk", rate=0.35)
    tiktok.add_fault("init", "http_5xx", rate=0.35)
    tiktok.add_fault("*", "slow", rate=0.5, delay=0.3)
    env = process_env(
        tiktok,
        broker_namespace,
        SCHEDULER_PERIODIC_SECONDS="0.5",
        NOTIFICATIONS_SWEEP_SECONDS="1",
        NOTIFICATIONS_EMAIL_GROUP_SECONDS="0.5",
        NOTIFICATIONS_EMAIL_LEASE_SECONDS="3",
        NOTIFICATIONS_EMAIL_RETRY_SECONDS="1",
        PUBLISH_LEASE_SECONDS="6",
        POLL_LEASE_SECONDS="4",
        EMAIL_BACKEND="apps.common.mail.EmailBackend",
    )
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    scheduler = start_process(["manage.py", "run_scheduler", "--interval", "0.25"], env)
    worker_argv = ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "3"]
    worker = start_process(worker_argv, env, log=logs[0])

    def settled() -> bool:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            open_posts = Post.objects.exclude(
                status__in=(PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION)
            )
            unsent = Notification.objects.filter(channel=Channel.EMAIL).exclude(status=Status.SENT)
            return not open_posts.exists() and not unsent.exists()

    # When the worker is killed twice while it works
    try:
        for n in (1, 2):
            time.sleep(2.5)
            kill_group(worker)
            worker = start_process(worker_argv, env, log=logs[n])
        deadline = time.monotonic() + 120
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        kill_group(worker, signal.SIGTERM)
        kill_group(scheduler, signal.SIGTERM)
        tiktok.clear_faults()

    # Then each failed or needs-attention post told its author, its manager and the owner, once each
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        assert settled(), "posts or emails were left unfinished"
        outcomes = {p.pk: p.status for p in Post.objects.filter(pk__in=[p.pk for p in posts])}
        told = [pk for pk, status in outcomes.items() if status in TOLD]
        assert told, outcomes  # the faults did bite
        expected = {"author@committed.example", "manager@committed.example", "owner@committed.example"}
        for pk in told:
            rows = list(
                Notification.objects.filter(event__post_id=pk).values_list(
                    "event__kind", "channel", "recipient__email"
                )
            )
            for channel in Channel.values:
                people = [email for kind, ch, email in rows if ch == channel and kind == TOLD[outcomes[pk]]]
                assert sorted(people) == sorted(expected), (pk, channel, rows)
            assert len(rows) == 6
        published = [pk for pk, status in outcomes.items() if status == PostStatus.PUBLISHED]
        assert not Notification.objects.filter(event__post_id__in=published).exists()
    # and by email: each failure in at least one email per person, in at most two
    printed = "".join(log.read_text(errors="replace") for log in logs)
    emails = [chunk for chunk in printed.split("-" * 79) if "\nTo: " in chunk]
    for pk in told:
        for person in expected:
            carrying = [m for m in emails if f"To: {person}" in m and f"/posts/{pk}/" in m]
            assert 1 <= len(carrying) <= 2, (pk, person, len(carrying))
    assert not [m for m in emails if "outsider@" in m]
    grouped = sum("updates from" in m for m in emails)
    print(f"worker kills: {len(told)} posts told, {len(emails)} emails ({grouped} grouped)")
