"""Signed webhook deliveries, the way TikTok sends them.

Body: `{"client_key", "event", "create_time", "user_openid", "content"}` where `content` is a JSON
*string*. Header `TikTok-Signature: t=<unix seconds>,s=<hex>` with
`s = HMAC_SHA256(key=client_secret, msg=f"{t}.{raw_body}")`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

DELIVERY_TIMEOUT = 5.0


def check_webhook_url(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("webhook_url must be an absolute http(s) URL.")
    return url


def sign(client_secret: str, timestamp: int, raw_body: bytes) -> str:
    message = f"{timestamp}.".encode() + raw_body
    return hmac.new(client_secret.encode(), message, hashlib.sha256).hexdigest()


def build_body(
    *, client_key: str, event: str, open_id: str, content: dict[str, object], create_time: int
) -> bytes:
    return json.dumps(
        {
            "client_key": client_key,
            "event": event,
            "create_time": create_time,
            "user_openid": open_id,
            "content": json.dumps(content),
        }
    ).encode()


def deliver(
    url: str,
    *,
    client_key: str,
    client_secret: str,
    event: str,
    open_id: str,
    content: dict[str, object],
    timeout: float = DELIVERY_TIMEOUT,
) -> int:
    """POST one signed event; the receiver's HTTP status, or 0 when none came back."""
    check_webhook_url(url)
    now = int(time.time())
    body = build_body(client_key=client_key, event=event, open_id=open_id, content=content, create_time=now)
    request = urllib.request.Request(  # noqa: S310 - scheme checked above: http(s) only
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "TikTok-Signature": f"t={now},s={sign(client_secret, now, body)}",
            "User-Agent": "FakeTikTok-Webhooks/1.0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        logger.warning("Webhook %s to %s failed: %s", event, url, exc)
        return 0
