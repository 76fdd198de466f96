"""Outgoing webhooks for programs: signed, delivered at least once through worker kills, turned off
after a day of failures (the admins told), sent again from the delivery log."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.common.crypto import Secret
from apps.common.outbox import notification_emit
from apps.fake_tiktok.server import FakeTikTok
from apps.notifications.delivery import chat_delivery_attempt, due_work
from apps.notifications.models import ChatDelivery, ChatWebhook, DeliveryStatus, Kind, Notification
from apps.posts.models import Post, PostStatus
from apps.posts.services import post_schedule
from tenants.models import Agency
from tests.conftest import process_env
from tests.factories import PostFactory, ready_post
from tests.servers import kill_group, start_process
from tests.test_notifications import Team, signed_in

SECRET = "receiver-shared-secret-for-tests"
POSTS = 6


class SigningReceiver:
    """A program's endpoint on a real socket: checks every signature as the README says, and
    holds the first request of each delivery for `hold` seconds (a worker can die meanwhile)."""

    def __init__(self, secret: str, hold: float = 0.0) -> None:
        self.secret, self.hold, self.status = secret, hold, 200
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.first_held = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers.get("X-Postline-Timestamp", "")
                expected = hmac.new(receiver.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= 300
                if not (
                    fresh
                    and hmac.compare_digest(
                        self.headers.get("X-Postline-Signature", ""), f"sha256={expected.hexdigest()}"
                    )
                ):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                delivery = self.headers["X-Postline-Delivery"]
                first = all(r["delivery"] != delivery for r in receiver.received)
                receiver.received.append({"delivery": delivery, "json": json.loads(raw)})
                if first and receiver.hold:
                    receiver.first_held.set()
                    time.sleep(receiver.hold)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/postline"


@pytest.fixture
def receiver() -> Iterator[SigningReceiver]:
    r = SigningReceiver(SECRET)
    yield r
    r.server.shutdown()


def test_each_event_reaches_a_program_at_least_once_signed_through_a_worker_kill(
    make_agency: Any, tiktok: FakeTikTok, broker_namespace: str, django_db_blocker: Any, tmp_path: Path
) -> None:
    # Given an agency with a signed webhook for published and failed posts, and posts due now
    receiver = SigningReceiver(SECRET, hold=4.0)
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        ChatWebhook.objects.create(
            name="Our system",
            style="signed",
            url=receiver.url,
            secret=Secret(SECRET),
            kinds=[Kind.POST_PUBLISHED, Kind.POST_FAILED],
        )
        posts = [
            ready_post(tiktok, size=200_000, status=PostStatus.DRAFT, scheduled_at=None, caption=f"w{n}")
            for n in range(POSTS)
        ]
        for post in posts:
            post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)
    tiktok.add_fault("init", "spam_risk", rate=0.3)
    env = process_env(
        tiktok,
        broker_namespace,
        SCHEDULER_PERIODIC_SECONDS="0.5",
        NOTIFICATIONS_SWEEP_SECONDS="1",
        CHAT_WEBHOOK_TIMEOUT_SECONDS="1",  # a delivery's lease: 4 s
        CHAT_WEBHOOK_BACKOFF="1",
    )
    scheduler = start_process(["manage.py", "run_scheduler", "--interval", "0.25"], env)
    argv = ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "3"]
    worker = start_process(argv, env, log=tmp_path / "worker-0.log")

    def delivered() -> bool:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            final = Post.objects.filter(status__in=(PostStatus.PUBLISHED, PostStatus.FAILED)).count() == POSTS
            waiting = ChatDelivery.objects.exclude(status=DeliveryStatus.SENT).exists()
            return final and not waiting and ChatDelivery.objects.count() == POSTS

    # When the worker is SIGKILLed while the program holds its first request
    try:
        assert receiver.first_held.wait(120), "no delivery reached the program"
        kill_group(worker)
        worker = start_process(argv, env, log=tmp_path / "worker-1.log")
        deadline = time.monotonic() + 120
        while not delivered() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        kill_group(worker, signal.SIGTERM)
        kill_group(scheduler, signal.SIGTERM)
        tiktok.clear_faults()
        receiver.server.shutdown()

    # Then every post's outcome reached the program, each request signed, at least once
    assert delivered(), "deliveries were left unsent"
    assert receiver.bad_signatures == 0
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        outcomes = {str(p.pk): p.status for p in Post.objects.all()}
    seen: dict[str, int] = {}
    for request in receiver.received:
        body = request["json"]
        seen[body["post_id"]] = seen.get(body["post_id"], 0) + 1
        assert body["type"] == f"post_{outcomes[body['post_id']]}"
        assert body["post_status"] == outcomes[body["post_id"]]
        assert body["agency"] == agency.slug and body["account_id"]
    assert set(seen) == set(outcomes)
    again = sum(count - 1 for count in seen.values())
    print(
        f"outgoing webhooks: {len(seen)} events, {len(receiver.received)} requests "
        f"({again} sent again after the kill)"
    )
    assert again >= 1  # the delivery the kill interrupted was sent once more


def test_a_day_of_failures_turns_the_webhook_off_tells_the_admins_and_it_can_be_sent_again(
    alpha: Agency, receiver: SigningReceiver
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        hook = ChatWebhook.objects.create(
            name="Ops", style="signed", url=receiver.url, secret=Secret(SECRET), kinds=[Kind.POST_FAILED]
        )
        post = PostFactory(account=team.account, created_by=team.author)
        receiver.status = 503
        notification_emit(kind="post_failed", obj=post, key="1", message="No.")
        delivery = ChatDelivery.objects.get(webhook=hook)
        ChatDelivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now() - dt.timedelta(days=1, seconds=1)
        )
        chat_delivery_attempt(delivery_id=delivery.pk)
        hook.refresh_from_db()
        delivery.refresh_from_db()
        # Given up, turned off, and the owner told (in the app and by email), not the author
        assert delivery.status == DeliveryStatus.FAILED
        assert not hook.is_active and "503" in hook.disabled_reason
        told = set(
            Notification.objects.filter(event__kind=Kind.WEBHOOK_DISABLED).values_list(
                "recipient__email", flat=True
            )
        )
        assert told == {"owner@shared.example"}
        # Nothing more is sent to it meanwhile
        notification_emit(kind="post_failed", obj=PostFactory(account=team.account), key="2", message="No.")
        assert not ChatDelivery.objects.filter(webhook=hook, status=DeliveryStatus.PENDING).exists()
        assert due_work()[1] == []
    owner = signed_in(alpha, "owner@shared.example")
    page = owner.get(f"/notifications/webhooks/{hook.pk}/").content.decode()
    assert "Turned off" in page and "Send again" in page
    # Another agency member may not send it again
    assert (
        signed_in(alpha, "manager@alpha.example")
        .post(f"/notifications/webhooks/{hook.pk}/deliveries/{delivery.pk}/redeliver/")
        .status_code
        == 404
    )

    # When the admin fixes it (saves it again) and sends the failed delivery again
    receiver.status = 200
    saved = owner.post(
        f"/notifications/webhooks/{hook.pk}/",
        {"name": "Ops", "style": "signed", "url": receiver.url, "kinds": ["post_failed"]},
    )
    assert saved.status_code == 302
    again = owner.post(f"/notifications/webhooks/{hook.pk}/deliveries/{delivery.pk}/redeliver/", follow=True)
    assert "Sending it again now" in again.content.decode()
    with schema_context(alpha.schema_name):
        hook.refresh_from_db()
        assert hook.is_active
        chat_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENT
    assert receiver.received[-1]["json"]["post_id"] == str(post.pk)
    assert receiver.bad_signatures == 0
