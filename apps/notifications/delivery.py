"""Sending what the outbox holds: grouped email, chat webhooks, daily digests (the worker's side).

Email is at least once: rows are leased (`sending`) and committed before the message leaves,
and marked `sent` after; a worker killed between the two leaves rows whose lease expires and
the sweep sends them again: at most one duplicate, carrying the same Message-ID.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse as _reverse
from django.utils import timezone

from apps.brand.selectors import brand_of
from apps.common.outbox import notification_emit
from apps.notifications.models import (
    Channel,
    ChatDelivery,
    ChatWebhook,
    DeliveryStatus,
    Event,
    Kind,
    Notification,
    PersonSettings,
    Status,
    WebhookStyle,
)
from apps.notifications.outbox import Fanout, may_still_see, notifications_write
from apps.notifications.outgoing import Answer, post_json
from apps.posts.models import Post, PostStatus
from apps.users.models import User
from tenants.db import connection
from tenants.models import Agency

logger = logging.getLogger(__name__)


def reverse(name: str, **kwargs: Any) -> str:
    """A path on the agency's site, whichever site (the root domain's webhooks) or process asks."""
    return _reverse(name, urlconf=settings.ROOT_URLCONF, **kwargs)


def _agency() -> Agency:
    return Agency.objects.get(schema_name=connection.schema_name)


def absolute(agency: Agency, path: str) -> str:
    return f"{agency.url.rstrip('/')}{path}" if path else agency.url


# --- Email ---


@dataclass(frozen=True)
class Item:
    title: str
    body: str
    url: str
    lines: list[dict[str, str]]


def _email_for(person: User, rows: list[Notification], agency: Agency) -> EmailMultiAlternatives:
    items = [
        Item(
            title=row.event.title,
            body=row.event.body,
            url=absolute(agency, row.event.path),
            lines=[
                {"text": line["text"], "url": absolute(agency, line.get("path", ""))}
                for line in row.event.lines
            ],
        )
        for row in rows
    ]
    digest = rows[0].event.kind == Kind.DIGEST
    if digest:
        subject = f"Your day in {agency.name}"
    elif len(items) == 1:
        subject = items[0].title
    else:
        subject = f"{len(items)} updates from {agency.name}"
    context = {
        "agency": agency,
        "brand": brand_of(agency),
        "person": person,
        "items": items,
        "digest": digest,
        "subject": subject,
        "preferences_url": absolute(agency, reverse("notifications:preferences")),
    }
    ids = ",".join(sorted(str(row.pk) for row in rows))
    message_id = f"<{hashlib.sha256(ids.encode()).hexdigest()[:32]}@notifications.{settings.PLATFORM_DOMAIN}>"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email.txt", context),
        to=[person.email],
        headers={"Message-ID": message_id},
    )
    message.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    return message


def _lease_email(user_id: uuid.UUID, now: dt.datetime) -> list[Notification]:
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(recipient_id=user_id, channel=Channel.EMAIL, not_before__lte=now)
            .filter(Q(status=Status.PENDING) | Q(status=Status.SENDING, lease_until__lt=now))
            .select_related("event", "recipient")
            .order_by("created_at")
        )
        if rows:
            Notification.objects.filter(pk__in=[r.pk for r in rows]).update(
                status=Status.SENDING,
                lease_until=now + dt.timedelta(seconds=settings.NOTIFICATIONS_EMAIL_LEASE_SECONDS),
            )
    return rows


def notification_email_deliver(*, user_id: uuid.UUID | str) -> int:
    """Send `user_id` their waiting email notifications: digests alone, everything else in one
    email. Returns how many emails went out."""
    now = timezone.now()
    rows = _lease_email(uuid.UUID(str(user_id)), now)
    if not rows:
        return 0
    person = rows[0].recipient
    visible = [row for row in rows if may_still_see(person, row.event)]
    hidden = [row.pk for row in rows if row not in visible]
    if hidden:
        Notification.objects.filter(pk__in=hidden).update(status=Status.SKIPPED, lease_until=None)
    agency = _agency()
    groups = [[r for r in visible if r.event.kind != Kind.DIGEST]] + [
        [r] for r in visible if r.event.kind == Kind.DIGEST
    ]
    sent = 0
    for group in groups:
        if not group:
            continue
        try:
            _email_for(person, group, agency).send()
        except Exception:
            # The mail server is down or refused: back to waiting; the sweep tries again.
            logger.exception("Email to user %s failed; it will be retried", person.pk)
            Notification.objects.filter(pk__in=[r.pk for r in group]).update(
                status=Status.PENDING,
                lease_until=None,
                not_before=timezone.now() + dt.timedelta(seconds=settings.NOTIFICATIONS_EMAIL_RETRY_SECONDS),
            )
            continue
        Notification.objects.filter(pk__in=[r.pk for r in group]).update(
            status=Status.SENT, sent_at=timezone.now(), lease_until=None, attempts=1
        )
        sent += 1
    return sent


# --- Chat ---


def chat_payload(webhook: ChatWebhook, event: Event | None, agency: Agency) -> dict[str, Any]:
    """Only what the event needs: what happened, on which account, and the link. No tokens,
    captions beyond the post's short name, or people's addresses."""
    if event is None:
        title, body, url, kind, key, at = (
            f"Test message from Postline for {agency.name}",
            "If you can read this, the webhook works.",
            agency.url,
            "test",
            "",
            timezone.now(),
        )
    else:
        title, body, url = event.title, event.body, absolute(agency, event.path)
        kind, key, at = event.kind, str(event.pk), event.created_at
    if webhook.style == WebhookStyle.SLACK:

        def esc(text: str) -> str:
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        lines = [f"*{esc(title)}*"] + ([esc(body)] if body else []) + [f"<{url}|Open in Postline>"]
        return {"text": "\n".join(lines)}
    payload: dict[str, Any] = {
        "id": key,
        "type": kind,
        "agency": agency.slug,
        "title": title,
        "text": body,
        "url": url,
        "occurred_at": at.isoformat(),
    }
    # What a program acts on: the API's ids (GET /api/v1/posts/{post_id}) and the post's state now.
    if event is not None:
        payload["account_id"] = str(event.account_id) if event.account_id else None
        payload["post_id"] = str(event.post_id) if event.post_id else None
        if event.post_id:
            payload["post_status"] = (
                Post.objects.filter(pk=event.post_id).values_list("status", flat=True).first()
            )
    return payload


def _backoff(attempts: int) -> dt.timedelta:
    steps = settings.CHAT_WEBHOOK_BACKOFF
    return dt.timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])


def chat_delivery_attempt(*, delivery_id: uuid.UUID | str) -> Answer | None:
    """One try at a delivery; on failure, the next try is planned with backoff, and after a day
    of failures the delivery is given up and its webhook marked failing."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            ChatDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook", "event")
            .filter(pk=delivery_id, status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING))
            .filter(Q(webhook__is_active=True) | Q(is_test=True))  # a webhook turned off waits
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.lease_until = now + dt.timedelta(seconds=settings.CHAT_WEBHOOK_TIMEOUT_SECONDS * 4)
        delivery.save(update_fields=["attempts", "last_attempt_at", "lease_until", "updated_at"])
    webhook = delivery.webhook
    answer = post_json(
        url=webhook.url,
        payload=chat_payload(webhook, delivery.event, _agency()),
        secret=webhook.secret.reveal() if webhook.style == WebhookStyle.SIGNED and webhook.secret else "",
        delivery_id=str(delivery.pk),
    )
    finished = timezone.now()
    delivery.response_status = answer.status
    delivery.error = answer.error[:300]
    delivery.lease_until = None
    if answer.ok:
        delivery.status, delivery.sent_at = DeliveryStatus.SENT, finished
        ChatWebhook.objects.filter(pk=webhook.pk).update(failing_since=None)
    elif delivery.is_test or finished - (delivery.redelivered_at or delivery.created_at) >= dt.timedelta(
        seconds=settings.CHAT_WEBHOOK_GIVE_UP_SECONDS
    ):
        delivery.status = DeliveryStatus.FAILED
        if not delivery.is_test:
            with transaction.atomic():
                delivery.save()
                _turn_off(webhook, delivery, finished)
            return answer
    else:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = finished + _backoff(delivery.attempts)
    delivery.save()
    return answer


def _turn_off(webhook: ChatWebhook, delivery: ChatDelivery, now: dt.datetime) -> None:
    """A day of failed tries: the webhook is turned off and its admins told (once)."""
    reason = (
        f"Deliveries failed for {settings.CHAT_WEBHOOK_GIVE_UP_SECONDS // 3600} hours; the last: "
        f"{delivery.error or 'no answer'}"
    )[:300]
    turned_off = ChatWebhook.objects.filter(pk=webhook.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason, failing_since=now
    )
    if turned_off:
        webhook.is_active, webhook.disabled_at, webhook.disabled_reason = False, now, reason
        notification_emit(kind=Kind.WEBHOOK_DISABLED, obj=webhook, key=f"{webhook.pk}:{now.isoformat()}")


def chat_delivery_redeliver(*, delivery: ChatDelivery, by: User) -> bool:
    """Send a delivery again (an admin asked): it is tried now, and for another day if it fails.
    False for a test message (send a new test instead) or one being tried right now."""
    if delivery.is_test:
        return False
    now = timezone.now()
    again = ChatDelivery.objects.filter(pk=delivery.pk).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    if not again.update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        redelivered_at=now,
        lease_until=None,
        updated_at=now,
    ):
        return False
    logger.info("Delivery %s of webhook %s sent again by %s", delivery.pk, delivery.webhook_id, by.pk)
    return True


# --- What the sweep finds ---


def due_work(now: dt.datetime | None = None) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """People with email whose time came (held by quiet hours, lost messages, expired leases,
    failed sends) and chat deliveries due for a try, in this agency."""
    now = now or timezone.now()
    settled = now - dt.timedelta(seconds=settings.NOTIFICATIONS_EMAIL_GROUP_SECONDS)
    users = (
        Notification.objects.filter(channel=Channel.EMAIL, not_before__lte=now)
        .filter(
            Q(status=Status.PENDING, created_at__lte=settled) | Q(status=Status.SENDING, lease_until__lt=now)
        )
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    deliveries = ChatDelivery.objects.filter(
        status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING),
        next_attempt_at__lte=now,
        webhook__is_active=True,
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    return list(users), list(deliveries.values_list("pk", flat=True)[:500])


# --- Daily digest ---


def _digest_lines(person: User, zone: zoneinfo.ZoneInfo, today: dt.date) -> list[dict[str, str]]:
    start_tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    start_today = start_tomorrow - dt.timedelta(days=1)
    visible = Post.objects.visible_to(person).select_related("account")
    tomorrow = visible.filter(
        status__in=(PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL),
        scheduled_at__gte=start_tomorrow,
        scheduled_at__lt=start_tomorrow + dt.timedelta(days=1),
    ).order_by("scheduled_at")
    failed = visible.filter(
        status__in=(PostStatus.FAILED, PostStatus.NEEDS_ATTENTION), updated_at__gte=start_today
    ).order_by("updated_at")
    lines = []
    for post in tomorrow[:50]:
        when = post.scheduled_at.astimezone(zone).strftime("%H:%M") if post.scheduled_at else ""
        status = post.get_status_display().lower()
        lines.append(
            {
                "text": f"Tomorrow {when}: @{post.account.username} “{post}” ({status})",
                "path": reverse("posts:detail", kwargs={"pk": post.pk}),
            }
        )
    for post in failed[:50]:
        lines.append(
            {
                "text": f"Today: @{post.account.username} “{post}” {post.get_status_display().lower()}",
                "path": reverse("posts:detail", kwargs={"pk": post.pk}),
            }
        )
    return lines


def digests_write(now: dt.datetime | None = None) -> Fanout:
    """Write today's digest for everyone whose digest hour has come in their zone (once a day)."""
    now = now or timezone.now()
    fanout = Fanout()
    for row in PersonSettings.objects.filter(digest_enabled=True, user__is_active=True).select_related(
        "user"
    ):
        person = row.user
        zone = zoneinfo.ZoneInfo(person.time_zone or "UTC")
        local = now.astimezone(zone)
        if local.hour < row.digest_hour or row.digest_last_on == local.date():
            continue
        with transaction.atomic():
            locked = PersonSettings.objects.select_for_update().get(pk=row.pk)
            if locked.digest_last_on == local.date():
                continue
            locked.digest_last_on = local.date()
            locked.save(update_fields=["digest_last_on", "updated_at"])
            lines = _digest_lines(person, zone, local.date())
            if not lines:
                continue  # nothing tomorrow, nothing failed: no email
            event, created = Event.objects.get_or_create(
                key=f"digest:{person.pk}:{local.date().isoformat()}",
                defaults={
                    "kind": Kind.DIGEST,
                    "title": f"Your day on {local.date():%A %d %B}",
                    "path": reverse("posts:list"),
                    "lines": lines,
                },
            )
            if created:
                fanout.email_user_ids |= notifications_write(event, [person], now).email_user_ids
    return fanout
