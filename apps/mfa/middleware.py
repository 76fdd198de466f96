"""Sessions that still owe their second step reach nothing but it.

After the password, a person with an authenticator app is signed in but not verified: every page
answers with a redirect to the code page until a code is accepted. A person who must use
two-step sign-in (apps.mfa.services.mfa_required) and has not set it up is sent to set it up.
Both hold for every URL of both sites, admin sites included, so no view can forget them.
Runs after django-otp's OTPMiddleware (which knows whether the session is verified).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.mfa.services import mfa_required

# Set at sign-in when the person had a confirmed authenticator (apps.mfa.signals): the session
# then owes a code. Kept in the session so that pages need no query to know.
MFA_SESSION_KEY = "mfa_owes_code"


class TwoStepMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self._intercept(request)
        return response if response is not None else self.get_response(request)

    def _intercept(self, request: HttpRequest) -> HttpResponse | None:
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return None
        if getattr(request, "api_request", False):
            return None  # signed with an API key, not a session (apps.api.middleware)
        if request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return None
        if request.session.get(MFA_SESSION_KEY):
            target, reachable = "mfa:verify", ["mfa:verify", "mfa:logout"]
        elif mfa_required(user=user, agency=getattr(request, "tenant", None)):
            target, reachable = "mfa:setup", ["mfa:setup", "mfa:confirm", "mfa:qr", "mfa:logout"]
        else:
            return None
        # The request's own URL configuration (the root domain has another): middleware runs
        # before Django installs it for the view.
        urlconf = getattr(request, "urlconf", None)
        url = reverse(target, urlconf=urlconf)
        if request.path in {reverse(name, urlconf=urlconf) for name in reachable}:
            return None
        if request.method == "GET" and url_has_allowed_host_and_scheme(
            request.get_full_path(), allowed_hosts={request.get_host()}
        ):
            return redirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
        return redirect(url)


# When the session last had its idle expiry pushed back (seconds since the epoch).
SEEN_SESSION_KEY = "seen_at"


def idle_refresh_seconds() -> int:
    return max(1, min(60, int(settings.SESSION_COOKIE_AGE) // 4))


class IdleTimeoutMiddleware:
    """A signed-in session ends SESSION_COOKIE_AGE (SESSION_IDLE_TIMEOUT_SECONDS) after its last
    request: each request pushes the end back, at most once a minute, so that pages do not write
    the session row on every request (Django's SESSION_SAVE_EVERY_REQUEST would). Sits after
    SessionMiddleware, which saves the session, with its new expiry, when this marks it changed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            now = time.time()
            seen = session.get(SEEN_SESSION_KEY)
            if seen is None or now - float(seen) >= idle_refresh_seconds():
                session[SEEN_SESSION_KEY] = now
        return response
