"""Delivering notifications over real sockets: email to an in-process SMTP server (aiosmtpd),
chat webhooks to a threaded HTTP receiver; preferences, quiet hours, digests, console mail."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.mail import EmailMessage
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import access_set
from apps.common.mail import EmailBackend
from apps.common.outbox import notification_emit
from apps.notifications.delivery import (
    _lease_email,
    chat_delivery_attempt,
    digests_write,
    due_work,
    notification_email_deliver,
)
from apps.notifications.models import (
    Channel,
    ChatDelivery,
    ChatWebhook,
    DeliveryStatus,
    Notification,
    PersonSettings,
    Status,
)
from apps.posts.models import PostStatus
from tenants.models import Agency
from tests.conftest import SMTPServer
from tests.factories import PostFactory
from tests.test_notifications import Team, signed_in

pytestmark = pytest.mark.django_db


def body(message: Any, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


# --- Email ---


def test_a_burst_of_failures_is_one_email_per_person_with_the_right_links(
    in_alpha: Agency, smtp_server: SMTPServer
) -> None:
    team = Team()
    posts = [PostFactory(account=team.account, created_by=team.author, caption=f"Clip {n}") for n in range(3)]
    for post in posts:
        notification_emit(
            kind="post_failed", obj=post, key=f"{post.pk}:1", message="TikTok refused the video."
        )
    # The worker's turn: each person's waiting email goes out as one message
    for person in (team.author, team.manager, team.owner, team.outsider, team.client):
        notification_email_deliver(user_id=person.pk)
    assert len(smtp_server.to("author@alpha.example")) == 1
    assert len(smtp_server.to("manager@alpha.example")) == 1
    assert smtp_server.to("outsider@alpha.example") == [] and smtp_server.to("client@alpha.example") == []
    (mail,) = smtp_server.to("author@alpha.example")
    assert mail["Subject"] == "3 updates from Alpha Agency"
    text, html = body(mail, "plain"), body(mail, "html")
    for post in posts:
        link = f"http://alpha.localhost:8000/posts/{post.pk}/"
        assert link in text and f'href="{link}"' in html
        assert f"“Clip {posts.index(post)}”" in text
    assert "http://alpha.localhost:8000/notifications/preferences/" in text
    assert 'href="http://alpha.localhost:8000/notifications/preferences/"' in html
    # and nothing goes twice
    assert notification_email_deliver(user_id=team.author.pk) == 0
    assert len(smtp_server.messages) == 3


def test_an_email_is_not_sent_to_someone_who_lost_access_before_it_left(
    in_alpha: Agency, smtp_server: SMTPServer
) -> None:
    team = Team()
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_failed", obj=post, key="1", message="No.")
    access_set(user=team.manager, account=team.account, perms=(), by=None)
    assert notification_email_deliver(user_id=team.manager.pk) == 0
    assert smtp_server.to("manager@alpha.example") == []
    assert Notification.objects.get(recipient=team.manager, channel=Channel.EMAIL).status == Status.SKIPPED


def test_a_worker_killed_mid_send_sends_at_most_one_more(in_alpha: Agency, smtp_server: SMTPServer) -> None:
    team = Team()
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_needs_attention", obj=post, key="1", message="Check TikTok.")
    # A worker leased the author's email and died before saying it was sent
    assert len(_lease_email(team.author.pk, timezone.now())) == 1
    assert notification_email_deliver(user_id=team.author.pk) == 0  # leased: nobody else sends it
    assert due_work()[0] == []
    # Its lease runs out: the sweep finds it, and it goes out once
    Notification.objects.filter(recipient=team.author).update(
        lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert team.author.pk in due_work()[0]
    assert notification_email_deliver(user_id=team.author.pk) == 1
    assert notification_email_deliver(user_id=team.author.pk) == 0
    assert len(smtp_server.to("author@alpha.example")) == 1


def test_quiet_hours_hold_email_until_they_end_in_the_persons_zone(
    in_alpha: Agency, smtp_server: SMTPServer
) -> None:
    team = Team()
    team.author.time_zone = "Asia/Tokyo"
    team.author.save()
    tokyo_now = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=9)))
    start = (tokyo_now - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (tokyo_now + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    PersonSettings.objects.create(user=team.author, quiet_start=start, quiet_end=end)
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_failed", obj=post, key="1", message="No.")
    row = Notification.objects.get(recipient=team.author, channel=Channel.EMAIL)
    # Held until the end of the quiet hours, 2 hours from now in Tokyo
    assert dt.timedelta(hours=1, minutes=58) < row.not_before - timezone.now() <= dt.timedelta(hours=2)
    assert notification_email_deliver(user_id=team.author.pk) == 0
    # In the app it shows at once
    assert Notification.objects.get(recipient=team.author, channel=Channel.IN_APP).status == Status.SENT
    # Once they are over, it goes
    Notification.objects.filter(pk=row.pk).update(not_before=timezone.now() - dt.timedelta(seconds=1))
    assert notification_email_deliver(user_id=team.author.pk) == 1
    assert len(smtp_server.to("author@alpha.example")) == 1


def test_the_daily_digest_lists_tomorrow_and_todays_failures_once(
    in_alpha: Agency, smtp_server: SMTPServer
) -> None:
    team = Team()
    PersonSettings.objects.create(user=team.author, digest_enabled=True, digest_hour=0)
    tomorrow = timezone.now().astimezone(dt.UTC).replace(hour=12) + dt.timedelta(days=1)
    coming = PostFactory(
        account=team.account, created_by=team.author, caption="Tomorrow's clip", scheduled_at=tomorrow
    )
    failed = PostFactory(
        account=team.account, created_by=team.author, caption="Broken clip", status=PostStatus.FAILED
    )
    PostFactory(account=team.elsewhere, caption="Not theirs", scheduled_at=tomorrow)
    fanout = digests_write()
    assert fanout.email_user_ids == {team.author.pk}
    assert digests_write().email_user_ids == set()  # once a day
    notification_email_deliver(user_id=team.author.pk)
    (mail,) = smtp_server.to("author@alpha.example")
    assert mail["Subject"] == "Your day in Alpha Agency"
    text = body(mail, "plain")
    assert "Tomorrow 12:" in text and "“Tomorrow's clip”" in text and "“Broken clip” failed" in text
    assert f"http://alpha.localhost:8000/posts/{coming.pk}/" in text
    assert f"http://alpha.localhost:8000/posts/{failed.pk}/" in text
    assert "Not theirs" not in text


def test_console_mail_keeps_long_links_whole() -> None:
    link = "http://alpha.localhost:8000/team/join/" + "k3Y_" * 12 + "/"
    stream = io.StringIO()
    message = EmailMessage(
        subject="Join Alpha Agency", body=f"Accept the invitation:\n{link}\n", to=["x@y.example"]
    )
    EmailBackend(stream=stream, alias="default").send_messages([message])
    assert link in stream.getvalue()
    assert "=\n" not in stream.getvalue()


# --- Preferences ---


def test_preferences_page_turns_a_kind_off_and_refuses_half_quiet_hours(
    alpha: Agency, smtp_server: SMTPServer
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
    author = signed_in(alpha, "author@alpha.example")
    page = author.get("/notifications/preferences/").content.decode()
    assert 'name="post_failed__email"' in page and "checked" in page
    data = {f"{k}__{c}": "on" for k in ("post_failed", "post_rejected") for c in ("in_app",)}
    refused = author.post("/notifications/preferences/", {**data, "quiet_start": "22:00", "digest_hour": "8"})
    assert refused.status_code == 200 and "both a start and an end" in refused.content.decode()
    with schema_context(alpha.schema_name):
        assert not PersonSettings.objects.filter(user=team.author).exists()
    saved = author.post("/notifications/preferences/", {**data, "digest_hour": "8"})
    assert saved.status_code == 302
    with schema_context(alpha.schema_name):
        post = PostFactory(account=team.account, created_by=team.author)
        notification_emit(kind="post_failed", obj=post, key="1", message="No.")
        mine = set(Notification.objects.filter(recipient=team.author).values_list("channel", flat=True))
        assert mine == {Channel.IN_APP}


def test_only_admins_set_agency_defaults(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
    assert signed_in(alpha, "manager@alpha.example").get("/notifications/defaults/").status_code == 404
    owner = signed_in(alpha, "owner@shared.example")
    assert owner.post("/notifications/defaults/", {"post_failed__in_app": "on"}).status_code == 302
    with schema_context(alpha.schema_name):
        post = PostFactory(account=team.account)
        notification_emit(kind="post_failed", obj=post, key="1", message="No.")
        channels = set(
            Notification.objects.filter(recipient__email="owner@shared.example").values_list(
                "channel", flat=True
            )
        )
        assert channels == {Channel.IN_APP}  # email off by the agency's default


# --- Chat webhooks ---


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each request and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "raw": raw, "json": json.loads(raw)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()


def test_a_slack_webhook_set_up_on_its_page_hears_of_failures_with_the_link_only(
    alpha: Agency, receiver: Receiver
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
    owner = signed_in(alpha, "owner@shared.example")
    made = owner.post(
        "/notifications/webhooks/",
        {"name": "#client-alerts", "style": "slack", "url": receiver.url, "kinds": ["post_failed"]},
    )
    assert made.status_code == 302
    with schema_context(alpha.schema_name):
        post = PostFactory(account=team.account, created_by=team.author, caption="Launch clip")
        notification_emit(kind="post_failed", obj=post, key="1", message="TikTok refused the video.")
        notification_emit(kind="post_needs_attention", obj=post, key="2", message="Not asked for.")
        (delivery,) = ChatDelivery.objects.all()
        chat_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENT
        token = TikTokAccount.objects.get(pk=team.account.pk).access_token.reveal()
    (request,) = receiver.requests
    text = request["json"]["text"]
    assert "A post for @brandone failed" in text and "TikTok refused the video." in text
    assert f"<http://alpha.localhost:8000/posts/{post.pk}/|Open in Postline>" in text
    assert token not in request["raw"].decode() and "author@alpha.example" not in request["raw"].decode()
    log = owner.get(made["Location"]).content.decode()
    assert "Delivered (200)" in log


def test_a_signed_webhook_carries_a_signature_made_with_the_secret_shown_once(
    alpha: Agency, receiver: Receiver
) -> None:
    owner = signed_in(alpha, "owner@shared.example")
    page = owner.post(
        "/notifications/webhooks/",
        {"name": "Ops", "style": "signed", "url": receiver.url, "kinds": ["account_needs_reauth"]},
    ).content.decode()
    secret = re.search(r'<code class="secret">([^<]+)</code>', page)
    assert secret is not None
    with schema_context(alpha.schema_name):
        hook = ChatWebhook.objects.get(name="Ops")
        assert secret.group(1) not in owner.get(f"/notifications/webhooks/{hook.pk}/").content.decode()
    assert owner.post(f"/notifications/webhooks/{hook.pk}/test/").status_code == 302
    (request,) = receiver.requests
    headers, raw = request["headers"], request["raw"]
    expected = hmac.new(
        secret.group(1).encode(), headers["X-Postline-Timestamp"].encode() + b"." + raw, hashlib.sha256
    ).hexdigest()
    assert headers["X-Postline-Signature"] == f"sha256={expected}"
    assert request["json"]["type"] == "test" and request["json"]["agency"] == "alpha"


def test_a_chat_that_is_down_is_retried_with_backoff_then_marked_failing(
    in_alpha: Agency, receiver: Receiver, settings: Any
) -> None:
    team = Team()
    receiver.status = 503
    hook = ChatWebhook.objects.create(name="Down", style="slack", url=receiver.url, kinds=["post_failed"])
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_failed", obj=post, key="1", message="No.")
    delivery = ChatDelivery.objects.get(webhook=hook)
    chat_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.response_status == 503
    first_wait = delivery.next_attempt_at - timezone.now()
    assert due_work()[1] == []  # not yet due
    ChatDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert due_work()[1] == [delivery.pk]
    chat_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at - timezone.now() > first_wait  # backing off
    # A day later it is given up and the webhook is marked failing
    ChatDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - dt.timedelta(days=1, seconds=1), next_attempt_at=timezone.now()
    )
    chat_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    hook.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and hook.failing_since is not None
    assert len(receiver.requests) == 3


def test_webhook_addresses_must_be_public_https_in_production(alpha: Agency, settings: Any) -> None:
    settings.CHAT_WEBHOOK_REQUIRE_HTTPS = True
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    owner = signed_in(alpha, "owner@shared.example")
    for url, says in (
        ("http://chat.example.com/hook", "must start with https://"),
        ("https://127.0.0.1/hook", "private or local address"),
        ("https://10.1.2.3/hook", "private or local address"),
        ("https://[::1]/hook", "private or local address"),
    ):
        page = owner.post(
            "/notifications/webhooks/", {"name": "X", "style": "slack", "url": url, "kinds": ["post_failed"]}
        )
        assert page.status_code == 200 and says in page.content.decode(), url
    with schema_context(alpha.schema_name):
        assert not ChatWebhook.objects.exists()


def test_only_admins_reach_webhooks(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        Team()
        hook = ChatWebhook.objects.create(name="Ops", style="slack", url="https://chat.example/hook")
    manager = signed_in(alpha, "manager@alpha.example")
    assert manager.get("/notifications/webhooks/").status_code == 404
    assert manager.post(f"/notifications/webhooks/{hook.pk}/test/").status_code == 404
    assert manager.post(f"/notifications/webhooks/{hook.pk}/delete/").status_code == 404
    with schema_context(alpha.schema_name):
        assert ChatWebhook.objects.filter(pk=hook.pk).exists()
        assert not ChatDelivery.objects.exists()
