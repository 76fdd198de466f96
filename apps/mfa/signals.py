"""Reacting to Django's sign-in (a third-party event): note whether the session owes a code, and
open the re-authentication window."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from apps.mfa.middleware import MFA_SESSION_KEY, SEEN_SESSION_KEY
from apps.mfa.reauth import reauth_mark
from apps.mfa.services import mfa_enabled


@receiver(user_logged_in, dispatch_uid="mfa_signed_in")
def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    if getattr(user, "otp_device", None) is None and mfa_enabled(user=user):
        request.session[MFA_SESSION_KEY] = True
    reauth_mark(request)
    request.session[SEEN_SESSION_KEY] = time.time()
