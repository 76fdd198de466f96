"""Error pages and error reports that never show a secret.

Django's own filter hides settings by name (KEY, SECRET, PASS, ...), which misses a password
inside DATABASE_URL or REDIS_URL, and shows every local variable of every frame, where a
revealed token or a connection's password may sit. Here:

- the settings named in SENSITIVE_SETTINGS (config/settings.py) are shown masked;
- a password inside any URL-looking setting or request header is masked;
- and the final page or report has every secret value masked wherever it appears (frame
  variables, exception messages, request data), in plain, HTML-escaped and percent-encoded form.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = SafeExceptionReporterFilter.cleansed_substitute
# user:password@ in a URL of any scheme.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s/]+)(?=@)", re.I)
# Shorter values are not treated as secrets to find elsewhere (they would mask ordinary words).
_MIN_SECRET = 6


def _url_password(value: str) -> str:
    try:
        password = urlsplit(value).password
    except ValueError:
        return ""
    return unquote(password) if password else ""


def secret_values() -> list[str]:
    """Every secret value the settings hold, longest first."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= _MIN_SECRET:
                found.add(value)
            password = _url_password(value)
            if len(password) >= _MIN_SECRET:
                found.add(password)
        elif isinstance(value, dict):
            for item in value.values():
                add(item)
        elif isinstance(value, list | tuple):
            for item in value:
                add(item)

    for name in getattr(settings, "SENSITIVE_SETTINGS", ()):
        add(getattr(settings, name, None))
    for database in settings.DATABASES.values():
        add(database.get("PASSWORD") or "")
    for cache in settings.CACHES.values():
        add(_url_password(str(cache.get("LOCATION", ""))))
    for mailer in getattr(settings, "MAILERS", {}).values():
        add((mailer.get("OPTIONS") or {}).get("password") or "")
    return sorted(found, key=len, reverse=True)


def _forms(value: str) -> Iterable[str]:
    yield value
    yield html.escape(value)
    yield quote(value, safe="")
    yield html.escape(quote(value, safe=""))


def mask_secrets(text: str, secrets: list[str] | None = None) -> str:
    for value in secret_values() if secrets is None else secrets:
        for form in _forms(value):
            if form in text:
                text = text.replace(form, MASK)
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)


class SecretMaskingFilter(SafeExceptionReporterFilter):
    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and key in getattr(settings, "SENSITIVE_SETTINGS", ()):
            return self.cleansed_substitute
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str:  # not lazy objects that only look like one
            return _URL_PASSWORD.sub(lambda m: m["head"] + self.cleansed_substitute, cleansed)
        return cleansed


class SecretMaskingReporter(ExceptionReporter):
    """Django's reporter, whose page and text pass through `mask_secrets` last."""

    @functools.cached_property
    def _secrets(self) -> list[str]:
        return secret_values()

    def get_traceback_html(self) -> SafeString:
        # Masking replaces secrets by asterisks in text Django already escaped: still safe.
        return mark_safe(mask_secrets(super().get_traceback_html(), self._secrets))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(mask_secrets(super().get_traceback_text(), self._secrets))  # noqa: S308
