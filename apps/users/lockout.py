"""Sign-in lockout: django-axes, fitted to tenancy and to how we compare addresses.

Every surface that checks a password or a code counts its failures here: an agency's sign-in
page and its /admin/login/, the operators' /admin/ on the root domain (all through
django.contrib.auth.authenticate, which axes' backend guards), the second step's one-time
codes and the password asked again before a sensitive action (apps.mfa), and the links of
password reset (apps.web.views). One rule for all of them:

- failures count against the address as authentication normalises it (apps.users.models.
  email_normalize: NFKC, case), whether or not anyone has it, and against the client's IP
  (apps.common.client_ip, which knows the trusted proxies);
- AXES_FAILURE_LIMIT failures for an address (default 5), or LOGIN_LOCKOUT_IP_FAILURES from
  an IP (default 20), within AXES_COOLOFF_TIME lock it until AXES_COOLOFF_TIME after the last
  failure: every attempt is refused before the password is checked, the right one included,
  and refused attempts neither count nor extend the lock;
- success forgets the address's failures, not the IP's (one good account must not wash out
  guesses at others); a password reset lifts the address's lock.

Axes' database handler keeps the attempts in the current schema: each agency (and the public
schema, for operators) has its own table, so a lock in one agency means nothing in another,
and parallel databases never meet (a cache key would have to carry both).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any, Literal

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.users.models import email_normalize

LockScope = Literal["email", "ip"]


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """The address an attempt counts against (AXES_USERNAME_CALLABLE)."""
    if credentials and credentials.get("username") is not None:
        return email_normalize(credentials["username"])
    return email_normalize(str(getattr(request, "POST", {}).get("username", ""))[:254])


def lockout_parameters(request: Any, credentials: dict[str, Any] | None = None) -> list[str]:
    """Count against the address and the IP; the IP alone when no address was given (a reset
    link), so attempts without one never share a counter across the world."""
    if isinstance(request, HttpRequest) and not lockout_username(request, credentials):
        return ["ip_address"]
    return ["username", "ip_address"]


def _ip_limit() -> int:
    return int(getattr(settings, "LOGIN_LOCKOUT_IP_FAILURES", 20))


def _sum(attempts: QuerySet[Any]) -> int:
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit of its own for the IP, and success forgetting only the
    address's failures."""

    def _attempts_by_parameter(
        self, request: HttpRequest, credentials: dict[str, Any] | None
    ) -> dict[str, Any]:
        names = [str(p) for p in lockout_parameters(request, credentials)]
        return dict(zip(names, self.get_user_attempts(request, credentials), strict=True))

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """Failures compared with AXES_FAILURE_LIMIT: the address's, or the limit itself once the
        IP has reached its own."""
        attempts = self._attempts_by_parameter(request, credentials)
        by_email = _sum(attempts["username"]) if "username" in attempts else 0
        if _sum(attempts["ip_address"]) >= _ip_limit():
            return max(by_email, int(settings.AXES_FAILURE_LIMIT))
        return by_email

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        if request is not None and getattr(request, "axes_locked_out", False):
            # Refused by a lock already in force: neither counted nor announced again.
            request.axes_credentials = credentials
            return
        super().user_login_failed(sender, credentials, request, **kwargs)

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        attempts = self._attempts_by_parameter(request, credentials)
        if "username" not in attempts:
            return 0
        count, _ = attempts["username"].delete()
        return int(count)


@dataclass(frozen=True)
class Lock:
    scope: LockScope
    until: dt.datetime

    @property
    def seconds_left(self) -> int:
        return max(1, int((self.until - timezone.now()).total_seconds()) + 1)


def lock_for(request: HttpRequest, *, email: str | None) -> Lock | None:
    """The lock that refuses an attempt from this request for `email` (None: no address), if any."""
    credentials = {"username": email or ""}
    AxesProxyHandler.update_request(request)
    if AxesProxyHandler.is_allowed(request, credentials):
        return None
    handler = AxesProxyHandler.get_implementation()
    if not isinstance(handler, LockoutHandler):
        raise ImproperlyConfigured("AXES_HANDLER must be apps.users.lockout.LockoutHandler.")
    attempts = handler._attempts_by_parameter(request, credentials)
    cool_off = get_cool_off(request) or dt.timedelta(0)
    scope: LockScope = "email"
    chosen = attempts.get("username")
    if chosen is None or _sum(chosen) < int(settings.AXES_FAILURE_LIMIT):
        scope, chosen = "ip", attempts["ip_address"]
    last = chosen.aggregate(last=Max("attempt_time"))["last"] or timezone.now()
    return Lock(scope=scope, until=last + cool_off)


def failure_record(request: HttpRequest, *, email: str | None) -> Lock | None:
    """Count a failure that did not go through authenticate() (a code, a reset link); return the
    lock now in force, if any."""
    AxesProxyHandler.update_request(request)
    user_login_failed.send(sender=__name__, credentials={"username": email or ""}, request=request)
    return lock_for(request, email=email)


def lockout_clear(*, email: str) -> None:
    """Lift the lock and forget the failures of an address, in the current schema."""
    AxesProxyHandler.reset_attempts(username=email_normalize(email))


def lock_message(lock: Lock, *, zone_name: str = "UTC") -> str:
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    minutes = max(1, -(-lock.seconds_left // 60))
    who = "this email" if lock.scope == "email" else "your network"
    until = f"{lock.until.astimezone(zone):%H:%M} ({zone.key})"
    return (
        f"Too many failed sign-in attempts for {who}, so signing in is paused until {until}, "
        f"about {minutes} minute{'s' if minutes != 1 else ''} from now. "
        "If you have forgotten your password, you can reset it meanwhile."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """What a locked attempt answers (AXES_LOCKOUT_CALLABLE). Our own pages render their form with
    the message themselves (status 429) and keep that; other surfaces, such as the admin sites'
    sign-in, get a page that says the same."""
    if original_response is not None and original_response.status_code == 429:
        return original_response
    email = lockout_username(request, credentials)
    lock = lock_for(request, email=email) or Lock(scope="email", until=timezone.now())
    tenant = getattr(request, "tenant", None)
    zone_name = getattr(tenant, "default_time_zone", "UTC") or "UTC"
    response = render(
        request,
        "registration/locked.html",
        {"lock_message": lock_message(lock, zone_name=zone_name)},
        status=429,
    )
    response["Retry-After"] = str(lock.seconds_left)
    return response
