"""Keep one-time tokens out of the logs.

Welcome, invitation, password-reset and email confirmation links carry their token in the path, TikTok's OAuth
callback and our finishing step carry `code` and `state` in the query; request logs (the
development server, django.request's 4xx/5xx warnings, django-axes' lines, a proxy's access log
fed through here) would otherwise keep working credentials. The filter rewrites a record's
message with those parts masked; attach it to every handler (config/settings.py LOGGING).
"""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"

_PATTERNS = (
    # /welcome/<token>/, the agency's /team/join/<token>/ and /verify-email/<token>/ (not .../send/)
    (re.compile(r"(/(?:welcome|team/join)/)[^/\s?#\"']+"), rf"\1{MASK}"),
    (re.compile(r"(/verify-email/)(?!send/)[^/\s?#\"']+"), rf"\1{MASK}"),
    # A client's review link and shared calendar (apps.reviews): /client/review/<token>/...
    (re.compile(r"(/client/(?:review|calendar)/)[^/\s?#\"']+"), rf"\1{MASK}"),
    # /password-reset/<uidb64>/<token>/, except Django's own /password-reset/<uidb64>/set-password/
    (re.compile(r"(/password-reset/[^/\s?#\"']+/)(?!set-password/)[^/\s?#\"']+"), rf"\1{MASK}"),
    # OAuth and other one-time query values, wherever a URL appears
    (
        re.compile(r"([?&;](?:code|state|token|code_verifier|access_token|refresh_token)=)[^&\s#\"']+"),
        rf"\1{MASK}",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class OneTimeTokenFilter(logging.Filter):
    """Masks one-time tokens in the record's message (formatted with its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record is logging's to report, as it is
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
