"""Requests to the agencies' chat webhooks: only to public https addresses, signed when asked.

An admin types the URL, so it is checked like any request the server makes for a user would
be: https (unless `CHAT_WEBHOOK_REQUIRE_HTTPS` is off, as in development), and every address
the host resolves to must be public (unless `CHAT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES`, on in
development and tests, whose receivers listen on 127.0.0.1). Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

SIGNATURE_HEADER = "X-Postline-Signature"
TIMESTAMP_HEADER = "X-Postline-Timestamp"
DELIVERY_HEADER = "X-Postline-Delivery"


class UnsafeURL(ValueError):
    pass


def check_url(url: str) -> None:
    """Raise UnsafeURL, with a sentence for the admin, unless the server may call `url`."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("Enter a full web address, starting with https://.")
    if parts.scheme != "https" and settings.CHAT_WEBHOOK_REQUIRE_HTTPS:
        raise UnsafeURL("The address must start with https://.")
    if parts.username or parts.password:
        raise UnsafeURL("Leave the user name and password out of the address.")
    if settings.CHAT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeURL(f"{parts.hostname} could not be found.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeURL(f"{parts.hostname} is a private or local address; use the chat's public address.")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None
    error: str


def post_json(*, url: str, payload: dict[str, Any], secret: str = "", delivery_id: str = "") -> Answer:
    """POST `payload`; signed with `secret` when given. Never raises for network trouble."""
    try:
        check_url(url)
    except UnsafeURL as exc:
        return Answer(ok=False, status=None, error=str(exc))
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Postline-Webhooks/1"}
    if delivery_id:
        headers[DELIVERY_HEADER] = delivery_id
    if secret:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=settings.CHAT_WEBHOOK_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        return Answer(ok=False, status=None, error=f"{type(exc).__name__}: could not reach the address")
    if 200 <= response.status_code < 300:
        return Answer(ok=True, status=response.status_code, error="")
    return Answer(ok=False, status=response.status_code, error=f"The chat answered {response.status_code}.")
