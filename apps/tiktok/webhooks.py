"""TikTok webhooks: verify, deduplicate, route to the agencies concerned, act.

One callback URL serves the whole app, so events arrive on the root domain and are routed
by `user_openid` through the public routing table, to the agencies that are active. TikTok may
deliver an event twice and retries for 72 hours: each verified body is applied once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.tiktok.models import TikTokRoute, WebhookDelivery
from tenants.db import connection
from tenants.models import AgencyStatus

logger = logging.getLogger(__name__)

PUBLISH_EVENTS = {
    "post.publish.complete",
    "post.publish.failed",
    "post.publish.inbox_delivered",
    "post.publish.publicly_available",
    "post.publish.no_longer_publicaly_available",
}


class WebhookRejected(Exception):
    """The request is not a genuine, current webhook from TikTok; nothing was changed."""


@dataclass(frozen=True)
class WebhookEvent:
    event: str
    open_id: str
    content: dict[str, Any]
    create_time: int
    digest: str


def verify(raw_body: bytes, signature_header: str, *, now: float | None = None) -> WebhookEvent:
    """Check `TikTok-Signature: t=<unix>,s=<hex>` against the client secret and the clock."""
    parts = dict(item.split("=", 1) for item in signature_header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        signature = parts["s"]
    except (KeyError, ValueError):
        raise WebhookRejected("missing or malformed TikTok-Signature header") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > settings.TIKTOK_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected("stale or future timestamp")
    expected = hmac.new(
        settings.TIKTOK_CLIENT_SECRET.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise WebhookRejected("signature mismatch")
    try:
        body = json.loads(raw_body)
        content = json.loads(body.get("content") or "{}") if isinstance(body.get("content"), str) else {}
    except (ValueError, TypeError, AttributeError):
        raise WebhookRejected("body is not TikTok's JSON") from None
    if body.get("client_key") != settings.TIKTOK_CLIENT_KEY:
        raise WebhookRejected("webhook for another app")
    return WebhookEvent(
        event=str(body.get("event", "")),
        open_id=str(body.get("user_openid", "")),
        content=content if isinstance(content, dict) else {},
        create_time=int(body.get("create_time") or 0),
        digest=hashlib.sha256(raw_body).hexdigest(),
    )


def webhook_apply(event: WebhookEvent) -> bool:
    """Apply a verified event once. Returns False for a duplicate delivery.

    The delivery row, every agency's change and `processed_at` commit together: when applying
    fails, nothing of it stays, TikTok is answered with an error and its redelivery applies the
    event. A second delivery of the same body while the first is being applied waits on the
    unique digest and is then a duplicate (or, if the first failed, applies it)."""
    connection.set_schema_to_public()
    with transaction.atomic():
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    digest=event.digest, event=event.event, open_id=event.open_id
                )
        except IntegrityError:
            logger.info("Duplicate webhook %s ignored", event.event)
            return False
        routes = TikTokRoute.objects.filter(open_id=event.open_id)
        # A suspended or deleted agency does nothing in the background: the delivery is recorded
        # (above) but not applied in its schema.
        schemas = list(
            routes.filter(agency__status=AgencyStatus.ACTIVE).values_list("agency__schema_name", flat=True)
        )
        if skipped := routes.exclude(agency__status=AgencyStatus.ACTIVE).count():
            logger.info("Webhook %s not applied in %d agency(ies) that are not active", event.event, skipped)
        for schema in schemas:
            with schema_context(schema):
                _apply_in_agency(event)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            processed_at=timezone.now(), agencies=len(schemas)
        )
    return True


def _apply_in_agency(event: WebhookEvent) -> None:
    from apps.accounts.services import account_authorization_removed
    from apps.posts.services import post_record_webhook

    if event.event == "authorization.removed":
        account_authorization_removed(open_id=event.open_id)
    elif event.event in PUBLISH_EVENTS:
        post_record_webhook(open_id=event.open_id, event=event.event, content=event.content)
    else:
        logger.info("Webhook %s has no handler", event.event)
