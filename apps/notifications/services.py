"""Notification writes: the outbox writer other slices reach through `notification_emit`,
reading, preferences, agency defaults and chat webhooks."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.audit.services import audit_record
from apps.common.crypto import Secret
from apps.common.outbox import Emitted
from apps.notifications.delivery import chat_delivery_attempt, chat_delivery_redeliver
from apps.notifications.models import (
    CHOOSABLE_KINDS,
    Channel,
    ChatDelivery,
    ChatWebhook,
    Notification,
    PersonSettings,
    Preference,
    WebhookStyle,
)
from apps.notifications.outbox import Fanout, event_write
from apps.notifications.outgoing import Answer, UnsafeURL, check_url
from apps.notifications.tasks import send_fanout_on_commit
from apps.users.models import User


def notification_write(emitted: Emitted) -> None:
    """The writer `apps.common.outbox.notification_emit` hands every event to (registered in
    apps.py): rows now, in the caller's transaction; messages after it commits."""
    with transaction.atomic():
        fanout = event_write(emitted)
    send_fanout_on_commit(fanout)


# --- Reading ---


def get_notification_for_user(user: Any, pk: uuid.UUID | str) -> Notification:
    """The one gate to a single notification: the person's own, about something they still see."""
    found = Notification.objects.inbox(user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such notification.")
    return found


def notification_mark_read(*, notification: Notification, by: Any) -> Notification:
    if notification.recipient_id != by.pk:
        raise Http404("No such notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_mark_all_read(*, by: Any) -> int:
    return int(
        Notification.objects.filter(recipient=by, channel=Channel.IN_APP, read_at__isnull=True).update(
            read_at=timezone.now(), updated_at=timezone.now()
        )
    )


# --- Preferences ---


def preferences_save(
    *,
    user: User,
    choices: dict[tuple[str, str], bool],
    quiet_start: dt.time | None,
    quiet_end: dt.time | None,
    digest_enabled: bool,
    digest_hour: int,
) -> None:
    """Store a person's choice for every kind and channel, their quiet hours and digest."""
    if (quiet_start is None) != (quiet_end is None):
        raise ValueError("Quiet hours need both a start and an end.")
    if not 0 <= digest_hour <= 23:
        raise ValueError("The digest hour is between 0 and 23.")
    with transaction.atomic():
        for kind in CHOOSABLE_KINDS:
            for channel in Channel.values:
                Preference.objects.update_or_create(
                    user=user,
                    kind=kind,
                    channel=channel,
                    defaults={"enabled": choices.get((kind, channel), False)},
                )
        PersonSettings.objects.update_or_create(
            user=user,
            defaults={
                "quiet_start": quiet_start,
                "quiet_end": quiet_end,
                "digest_enabled": digest_enabled,
                "digest_hour": digest_hour,
            },
        )


def defaults_save(*, choices: dict[tuple[str, str], bool], by: User, request: Any = None) -> None:
    """The agency's defaults: what people who chose nothing get (owners and admins only)."""
    if not by.is_agency_admin:
        raise PermissionError("Only owners and admins set the agency's defaults.")
    with transaction.atomic():
        changed = {}
        for kind in CHOOSABLE_KINDS:
            for channel in Channel.values:
                wanted = choices.get((kind, channel), False)
                row, created = Preference.objects.get_or_create(
                    user=None, kind=kind, channel=channel, defaults={"enabled": wanted}
                )
                if created or row.enabled != wanted:
                    row.enabled = wanted
                    row.save(update_fields=["enabled", "updated_at"])
                    changed[f"{kind}/{channel}"] = wanted
        if changed:
            audit_record(action="notifications.defaults_changed", actor=by, request=request, changes=changed)


# --- Chat webhooks ---


def _require_admin(by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only owners and admins manage chat webhooks.")


def chat_webhook_save(
    *,
    by: User,
    name: str,
    style: str,
    url: str,
    kinds: list[str],
    webhook: ChatWebhook | None = None,
    request: Any = None,
) -> tuple[ChatWebhook, str]:
    """Create or change a webhook. Returns it and, for a new signed one, its signing secret
    (shown once). Raises UnsafeURL for an address the server must not call."""
    _require_admin(by)
    check_url(url)
    if style not in WebhookStyle.values:
        raise ValueError("Choose a kind of webhook.")
    raw = ""
    with transaction.atomic():
        hook = webhook or ChatWebhook(created_by=by)
        if style == WebhookStyle.SIGNED and not hook.secret:
            raw = secrets.token_urlsafe(32)
            hook.secret = Secret(raw)
        hook.name, hook.style, hook.url, hook.kinds = name.strip(), style, url.strip(), sorted(set(kinds))
        # Saved again by an admin (its address fixed, say): a webhook turned off is back on.
        hook.is_active, hook.disabled_at, hook.disabled_reason = True, None, ""
        hook.updated_by = by
        hook.save()
        audit_record(
            action="notifications.webhook_saved",
            actor=by,
            obj=hook,
            request=request,
            changes={"name": hook.name, "style": style, "kinds": hook.kinds},
        )
    return hook, raw


def chat_webhook_delete(*, webhook: ChatWebhook, by: User, request: Any = None) -> None:
    _require_admin(by)
    with transaction.atomic():
        audit_record(
            action="notifications.webhook_deleted",
            actor=by,
            obj=webhook,
            request=request,
            changes={"name": webhook.name},
        )
        webhook.delete()


def chat_webhook_test(*, webhook: ChatWebhook, by: User) -> Answer:
    """Send a test message now (the admin waits for the answer); it shows in the delivery log."""
    _require_admin(by)
    delivery = ChatDelivery.objects.create(webhook=webhook, is_test=True, next_attempt_at=timezone.now())
    answer = chat_delivery_attempt(delivery_id=delivery.pk)
    return answer or Answer(ok=False, status=None, error="Another test is being sent.")


__all__ = ["UnsafeURL"]


def chat_webhook_redeliver(*, delivery: ChatDelivery, by: User, request: Any = None) -> bool:
    """Send one logged delivery again, now; False when it cannot be (a test, or being sent)."""
    _require_admin(by)
    with transaction.atomic():
        if not chat_delivery_redeliver(delivery=delivery, by=by):
            return False
        audit_record(
            action="notifications.webhook_redelivered",
            actor=by,
            obj=delivery.webhook,
            request=request,
            changes={"delivery": str(delivery.pk)},
        )
        send_fanout_on_commit(Fanout(chat_delivery_ids=[delivery.pk]))
    return True
