"""Driving the fake TikTok's consent page the way a person's browser would."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import httpx
from django.test import Client

from tests.conftest import client_for

_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def consent(
    authorize_url: str, *, creator: str, drop_scopes: tuple[str, ...] = (), decision: str = "authorize"
) -> str:
    """Open TikTok's authorize page, pick a creator, untick scopes, decide. Returns the redirect URL."""
    page = httpx.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    form: list[tuple[str, str]] = []
    for tag in _INPUT.findall(page.text):
        attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
        name, kind = attrs.get("name"), attrs.get("type", "text").lower()
        if not name or kind in ("submit", "button"):
            continue
        if name == "creator":
            continue
        if name == "scope" and attrs.get("value") in drop_scopes:
            continue
        if kind in ("checkbox", "radio") and "checked" not in tag.lower():
            continue
        form.append((name, attrs.get("value", "")))
    form += [("creator", creator), ("decision", decision)]
    fields: dict[str, list[str]] = {}
    for name, value in form:
        fields.setdefault(name, []).append(value)
    answer = httpx.post(authorize_url, data=fields, timeout=10, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def start_connect(client: Client) -> str:
    response = client.post("/accounts/connect/")
    assert response.status_code == 302
    return str(response["Location"])


def finish(callback_url: str) -> tuple[int, str, str]:
    """Deliver TikTok's redirect to our root-domain callback. Returns (status, location, body)."""
    parts = urlsplit(callback_url)
    response = client_for(None).get(f"{parts.path}?{parts.query}", HTTP_HOST=parts.hostname)
    return response.status_code, response.get("Location", ""), response.content.decode()


def land(client: Client, location: str, *, status: int = 200) -> str:
    """Follow the callback's redirect to the agency's subdomain in `client`'s browser, where the
    connection is finished; returns the final page."""
    parts = urlsplit(location)
    response = client.get(f"{parts.path}?{parts.query}", follow=True)
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()
