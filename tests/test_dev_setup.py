"""`make dev` on another port, and the fake TikTok's images in development: the settings the
processes start with, read the way they read them (a fresh interpreter, from the environment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from django.conf import settings

from apps.fake_tiktok.creators import CREATORS

# Variables these tests set themselves: a developer's own must not leak in.
_OURS = (
    "DEBUG",
    "SITE_PORT",
    "SITE_SCHEME",
    "PLATFORM_DOMAIN",
    "PORT",
    "FAKE_PORT",
    "EMAIL_HOST",
    "EMAIL_BACKEND",
)


def _environ(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _OURS and not k.startswith("TIKTOK_")}
    return {**base, **values}


def dev_environment(**values: str) -> dict[str, str]:
    """What scripts/dev.sh exports to the processes it starts (`dev.sh env`), given `values`."""
    out = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "scripts/dev.sh", "env"],
        env=_environ(**values),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    exported = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    return {**values, **exported}


def settings_in(env: dict[str, str]) -> dict[str, Any]:
    """The settings a process started with `env` has."""
    code = (
        "import json, config.settings as s;"
        "print(json.dumps({'SITE_PORT': s.SITE_PORT, 'TIKTOK_REDIRECT_URI': s.TIKTOK_REDIRECT_URI,"
        " 'TIKTOK_API_BASE_URL': s.TIKTOK_API_BASE_URL, 'CSP': s.SECURE_CSP}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_environ(**env),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def test_make_dev_on_another_port_sends_tiktok_back_to_that_port() -> None:
    dev = settings_in(dev_environment(PORT="8100", DEBUG="1"))

    assert dev["SITE_PORT"] == "8100"  # the links `ensure_demo_agency` prints and pages build
    assert dev["TIKTOK_REDIRECT_URI"] == "http://localhost:8100/oauth/tiktok/callback/"
    assert "http://*.localhost:8100" in dev["CSP"]["form-action"]


def test_a_site_port_already_set_is_kept() -> None:
    # e.g. runserver behind a proxy that the browser reaches on another port
    assert settings_in(dev_environment(PORT="8100", SITE_PORT="80", DEBUG="1"))["SITE_PORT"] == "80"


def test_in_development_the_fake_tiktoks_avatars_are_allowed_images() -> None:
    dev = settings_in(dev_environment(DEBUG="1"))

    # The fake builds image URLs on the origin the app calls its API by.
    avatar = CREATORS[0].avatar_url(dev["TIKTOK_API_BASE_URL"])
    origin = avatar.split("/_fake/", 1)[0]
    assert avatar.startswith("http://127.0.0.1:8765/")
    assert origin in dev["CSP"]["img-src"]


def test_production_allows_no_plain_http_images() -> None:
    production = settings_in(
        dev_environment(
            DEBUG="0",
            SECRET_KEY="x" * 50,
            FIELD_ENCRYPTION_KEYS="a" * 43 + "=",
            TIKTOK_CLIENT_SECRET="not-a-real-secret",
            TIKTOK_AUTH_URL="https://www.tiktok.com/v2/auth/authorize/",
            TIKTOK_API_BASE_URL="http://127.0.0.1:8765",
            EMAIL_HOST="smtp.example.com",
        )
    )

    assert [s for s in production["CSP"]["img-src"] if s.startswith("http:")] == []
