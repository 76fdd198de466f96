"""No one-time token (welcome, invitation, password reset, OAuth code and state) reaches a log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from apps.common.log_redaction import redact
from tenants.models import Agency
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

TOKEN = "Zq8v1TnU6mX2p4S0LwR9c7HbYd3KfJ5eQa-gNiOoVtE"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the configured handlers print (the ones the settings set up), while the test runs."""
    out = io.StringIO()
    handlers = {
        h
        for name in ("", "django.server", "django.request", "axes")
        for h in logging.getLogger(name).handlers
        if isinstance(h, logging.StreamHandler) and h.name  # configured by LOGGING, not pytest's
    }
    previous = {h: h.setStream(out) for h in handlers}
    yield out
    for handler, stream in previous.items():
        if stream is not None:
            handler.setStream(stream)


def test_request_logs_keep_no_one_time_token(alpha: Agency, log_output: io.StringIO) -> None:
    # When links carrying one-time tokens are opened (refused ones are logged as warnings)
    client = client_for(alpha)
    assert client.get(f"/welcome/{TOKEN}/").status_code == 400
    assert client.get(f"/team/join/{TOKEN}/").status_code in (200, 400, 404)
    assert client.get(f"/password-reset/MQ/{TOKEN}/").status_code in (200, 302, 400)
    # and the development server writes its request lines, as runserver does
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /oauth/tiktok/callback/?code={TOKEN}&state=s.{TOKEN}&scopes=a HTTP/1.1", 302, 0
    )
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /welcome/{TOKEN}/ HTTP/1.1", 200, 512)

    # Then the logs say which pages were asked for, never with the tokens
    text = log_output.getvalue()
    assert (
        "/welcome/[redacted]/" in text and "/oauth/tiktok/callback/?code=[redacted]&state=[redacted]" in text
    )
    assert TOKEN not in text


def test_redaction_keeps_what_is_not_a_token() -> None:
    assert redact("/password-reset/MQ/set-password/") == "/password-reset/MQ/set-password/"
    assert redact("/posts/1b2c/?account=42&days=30") == "/posts/1b2c/?account=42&days=30"
    assert redact("/team/join/abc/?x=1") == "/team/join/[redacted]/?x=1"
