"""Settings fail closed: a process started without DEBUG is a production one, refuses to start
without what production needs, passes `check --deploy` with the README's environment, and its
error pages and reports never show a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.views.debug import get_exception_reporter_class

from tests.conftest import client_for

# The production environment the README documents (values made up).
PRODUCTION = {
    "SECRET_KEY": "k3Yq8mZ2vN5rT7wX1pL4sD6fG9hJ0aB3cE5gI7kM9oQ1uW3yZ5-long-enough",
    "FIELD_ENCRYPTION_KEYS": "mK8q0n9HnXm7bq9dXgq9O7lq1Yl9J1c3nQ0xW7m2wQk=",
    "TIKTOK_CLIENT_KEY": "aw-client-key",
    "TIKTOK_CLIENT_SECRET": "tiktok-client-secret-planted",
    "TIKTOK_AUTH_URL": "https://www.tiktok.com/v2/auth/authorize/",
    "TIKTOK_API_BASE_URL": "https://open.tiktokapis.com",
    "PLATFORM_DOMAIN": "postline.app",
    "DATABASE_URL": "postgres://postline:db-password-planted@127.0.0.1:5432/postline",
    "REDIS_URL": "redis://:redis-password-planted@127.0.0.1:6379/0",
    "EMAIL_HOST": "smtp.example.com",
    "EMAIL_USER": "postline",
    "EMAIL_PASSWORD": "smtp-password-planted",
    "METRICS_TOKEN": "metrics-token-planted",
    "S3_ACCESS_KEY_ID": "postline",
    "S3_SECRET_ACCESS_KEY": "s3-secret-planted",
}
_MINE = {"DEBUG", *PRODUCTION, "EMAIL_BACKEND", "SITE_SCHEME", "SITE_PORT", "LOG_FORMAT", "S3_ENDPOINT_URL"}


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in _MINE and not k.startswith("TIKTOK_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }  # set in-process by the browser tests
    return subprocess.run(
        [sys.executable, *code.split()] if code.startswith("manage.py") else [sys.executable, "-c", code],
        env={**base, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_debug_in_the_environment_it_is_production_and_wants_its_secrets() -> None:
    refused = run("import config.settings")

    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr

    started = run(
        "import config.settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.LOG_FORMAT)", **PRODUCTION
    )
    assert started.stdout.split() == ["False", "True", "json"], started.stderr


@pytest.mark.parametrize("missing", ["TIKTOK_AUTH_URL", "TIKTOK_API_BASE_URL", "EMAIL_HOST"])
def test_production_refuses_to_start_without_tiktok_urls_or_mail(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    refused = run("import config.settings", **env)

    assert refused.returncode != 0
    assert missing in refused.stderr


def test_check_deploy_passes_with_the_documented_production_environment() -> None:
    checked = run("manage.py check --deploy --fail-level WARNING", **PRODUCTION)

    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout
    assert "WARNINGS" not in checked.stderr + checked.stdout


PLANTED = [
    "db-password-planted",
    "redis-password-planted",
    "tiktok-client-secret-planted",
    "smtp-password-planted",
    "metrics-token-planted",
]


@pytest.fixture
def planted_secrets(settings: Any) -> None:
    """Production-like secrets in the settings, and a Redis that cannot be reached with them."""
    settings.DEBUG = True  # the technical error page, with settings and frame variables
    settings.DATABASE_URL = PRODUCTION["DATABASE_URL"]
    settings.REDIS_URL = "redis://:redis-password-planted@127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    settings.TIKTOK_CLIENT_SECRET = PRODUCTION["TIKTOK_CLIENT_SECRET"]
    settings.METRICS_TOKEN = PRODUCTION["METRICS_TOKEN"]
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "smtp.example.com", "password": PRODUCTION["EMAIL_PASSWORD"]},
        }
    }


@pytest.mark.django_db
def test_the_debug_error_page_never_shows_passwords_tokens_or_the_client_secret(
    planted_secrets: None,
) -> None:
    client = client_for(None)
    client.raise_request_exception = False

    # "Find my agency" counts requests in the cache: Redis refuses, the page fails with a 500.
    page = client.post("/find/", {"email": "someone@example.com"}, HTTP_ACCEPT="text/html")

    html = page.content.decode()
    assert page.status_code == 500 and "Traceback" in html and "DATABASE_URL" in html
    for value in PLANTED:
        assert value not in html, value

    text = client.post("/find/", {"email": "a@example.com"}, HTTP_ACCEPT="text/plain")
    assert text.status_code == 500 and "Traceback" in text.content.decode()
    for value in PLANTED:
        assert value not in text.content.decode(), value


def test_the_error_report_masks_a_secret_held_in_a_local_variable(planted_secrets: None) -> None:
    def connect(url: str) -> None:
        password = url.split(":")[2].split("@")[0]  # as a driver would hold it
        raise ConnectionError(f"could not authenticate with {password!r}")

    try:
        connect(settings.REDIS_URL)
    except ConnectionError:
        # The class Django's error pages and its error emails (AdminEmailHandler) use.
        reporter = get_exception_reporter_class(None)(None, *sys.exc_info())  # type: ignore[arg-type]
        report = reporter.get_traceback_text()

    assert "could not authenticate" in report
    assert "redis-password-planted" not in report


def test_health_answers_without_an_allowed_host_but_not_as_an_agency(db: None, alpha: Any) -> None:
    assert Client(HTTP_HOST="10.0.0.7").get("/healthz").status_code == 200
    assert client_for(alpha).get("/healthz").status_code == 404
