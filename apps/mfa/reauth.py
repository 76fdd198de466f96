"""Asking again before a sensitive action: ownership transfer, deactivation, disconnecting an
account, two-step sign-in changes and the password change.

Signing in (password, and code where one is needed) opens a short window
(REAUTH_WINDOW_SECONDS, default 5 minutes) in which such actions go ahead; after it, the action
asks for the password or a code again, and a right answer opens the window anew. Wrong answers
count in the sign-in lockout (apps.users.lockout), and a locked address is refused here too.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from apps.mfa.services import code_match, mfa_enabled
from apps.users.lockout import failure_record, lock_for, lock_message

REAUTH_SESSION_KEY = "reauth_at"
REAUTH_FIELD = "reauth_secret"


def reauth_window() -> int:
    return int(getattr(settings, "REAUTH_WINDOW_SECONDS", 300))


def reauth_mark(request: HttpRequest) -> None:
    """The person just proved who they are: open the window."""
    request.session[REAUTH_SESSION_KEY] = time.time()


def reauth_fresh(request: HttpRequest) -> bool:
    at = request.session.get(REAUTH_SESSION_KEY)
    return at is not None and time.time() - float(at) < reauth_window()


def reauth_prompt(request: HttpRequest) -> dict[str, Any]:
    """What a confirmation page shows to ask again: nothing while the window is open."""
    if reauth_fresh(request):
        return {"reauth": None}
    user: Any = request.user
    with_code = mfa_enabled(user=user)
    return {
        "reauth": {
            "field": REAUTH_FIELD,
            "label": "Your password or a code from your authenticator app" if with_code else "Your password",
            "error": "",
        }
    }


def reauth_refusal(request: HttpRequest) -> dict[str, Any] | None:
    """None when the action may go ahead (window open, or the posted password or code is right,
    which opens it); otherwise the prompt to show again, with what was wrong."""
    if reauth_fresh(request):
        return None
    user: Any = request.user
    prompt = reauth_prompt(request)
    secret = str(request.POST.get(REAUTH_FIELD, ""))
    lock = lock_for(request, email=user.email)
    if lock is not None:
        prompt["reauth"]["error"] = lock_message(lock)
        return prompt
    if not secret:
        prompt["reauth"]["error"] = "To go ahead, enter your password (or a code from your app) again."
        return prompt
    if len(secret) <= 4096 and (user.check_password(secret) or code_match(user=user, token=secret)):
        reauth_mark(request)
        return None
    lock = failure_record(request, email=user.email)
    prompt["reauth"]["error"] = (
        lock_message(lock) if lock else "That is not your password or a current code; nothing was changed."
    )
    return prompt
