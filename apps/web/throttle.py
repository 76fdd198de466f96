"""Counting attempts in Django's cache (Redis): the sign-in lockout and per-IP rate limits.

Sign-in lockout, on an agency's subdomain:
- every failed sign-in counts against the attempted email (whether or not such a user exists,
  so a lock tells nothing about who has an account) and against the client's IP;
- LOGIN_LOCKOUT_FAILURES failures for one email (default 5), or LOGIN_LOCKOUT_IP_FAILURES from
  one IP (default 20), within LOGIN_LOCKOUT_WINDOW_SECONDS (900) lock that email, or that IP,
  for LOGIN_LOCKOUT_SECONDS (900): every attempt is refused before the password is checked,
  the right password included;
- a successful sign-in clears the email's failures (not the IP's: one good account must not
  wash out guesses at others); a password reset lifts the email's lock.

Counters are fixed windows that start at the first failure (an atomic INCR on a key that
expires with the window). A lock is a key that expires when the lock ends and holds that time.

Keys: Django's cache prefixes every key with the current schema (django_tenants' key function),
so counters are per agency. We add the database name because one Redis can serve several
databases (staging and production, parallel test runs) whose schema names repeat. Emails are
hashed, never stored in keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from apps.audit.services import audit_record, client_ip
from tenants.db import connection

LockScope = Literal["email", "ip"]


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _key(*parts: str) -> str:
    return ":".join(["throttle", str(connection.settings_dict["NAME"]), *parts])


def _email_id(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _count(key: str, window: int) -> int:
    """Add one to the counter at `key`, which starts and expires with its window."""
    for _ in range(2):
        cache.add(key, 0, timeout=window)
        try:
            return int(cache.incr(key))
        except ValueError:  # it expired between add and incr: start a new window
            continue
    return 1


@dataclass(frozen=True)
class Lock:
    scope: LockScope
    until: dt.datetime

    @property
    def seconds_left(self) -> int:
        return max(1, int(self.until.timestamp() - time.time()) + 1)


def _lock_get(scope: LockScope, ident: str) -> Lock | None:
    until = cache.get(_key("login-lock", scope, ident))
    if until is None or float(until) <= time.time():
        return None
    return Lock(scope=scope, until=dt.datetime.fromtimestamp(float(until), tz=dt.UTC))


def _lock_set(scope: LockScope, ident: str) -> Lock:
    seconds = _setting("LOGIN_LOCKOUT_SECONDS", 900)
    until = time.time() + seconds
    cache.set(_key("login-lock", scope, ident), until, timeout=seconds)
    cache.delete(_key("login-fail", scope, ident))  # after the lock, start afresh
    return Lock(scope=scope, until=dt.datetime.fromtimestamp(until, tz=dt.UTC))


def login_lock(request: HttpRequest, *, email: str) -> Lock | None:
    """The lock that refuses this sign-in attempt, if any (the email's first)."""
    lock = _lock_get("email", _email_id(email))
    if lock is None and (ip := client_ip(request)):
        lock = _lock_get("ip", ip)
    return lock


def login_failure_record(request: HttpRequest, *, email: str) -> Lock | None:
    """Count a failed sign-in; return the lock it engaged, if it engaged one.

    Engaging a lock is recorded in the agency's audit log as "login.locked".
    """
    window = _setting("LOGIN_LOCKOUT_WINDOW_SECONDS", 900)
    engaged: list[Lock] = []
    email_failures = _count(_key("login-fail", "email", _email_id(email)), window)
    if email_failures >= _setting("LOGIN_LOCKOUT_FAILURES", 5):
        engaged.append(_lock_set("email", _email_id(email)))
    ip = client_ip(request)
    if ip:
        ip_failures = _count(_key("login-fail", "ip", ip), window)
        if ip_failures >= _setting("LOGIN_LOCKOUT_IP_FAILURES", 20):
            engaged.append(_lock_set("ip", ip))
    for lock in engaged:
        audit_record(
            action="login.locked",
            request=request,
            changes={
                "email": email.strip().lower()[:254],
                "scope": lock.scope,
                "until": lock.until.isoformat(),
            },
        )
    return engaged[0] if engaged else None


def login_success_record(*, email: str) -> None:
    """A successful sign-in forgets the email's failures."""
    cache.delete(_key("login-fail", "email", _email_id(email)))


def login_lockout_clear(*, email: str | None = None, ip: str | None = None) -> None:
    """Lift the lock and forget the failures of an email and/or an IP, in the current agency."""
    keys = []
    if email is not None:
        keys += [_key(kind, "email", _email_id(email)) for kind in ("login-fail", "login-lock")]
    if ip is not None:
        keys += [_key(kind, "ip", ip) for kind in ("login-fail", "login-lock")]
    cache.delete_many(keys)


# --- Rate limits ---


@dataclass(frozen=True)
class RateLimited:
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


def rate_limit_hit(scope: str, ident: str, *, limit: int, window: int) -> RateLimited | None:
    """Count one request of `ident` (an IP, say) in `scope`; over `limit` per `window` seconds
    it is refused, and the answer says when the window ends."""
    key = _key("rate", scope, ident)
    cache.add(f"{key}:start", time.time(), timeout=window)
    if _count(key, window) <= limit:
        return None
    started = float(cache.get(f"{key}:start") or time.time())
    return RateLimited(retry_after=max(1, int(started + window - time.time()) + 1))


def rate_limit_clear(scope: str, ident: str) -> None:
    key = _key("rate", scope, ident)
    cache.delete_many([key, f"{key}:start"])
