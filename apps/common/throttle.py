"""Rate limits per client IP and per address on the forms that send mail or create things:
signup, "find my agency", password reset and invitations (settings.THROTTLES).

Our own code, not django-axes: axes counts failed sign-ins and locks; these count requests
that succeed as far as the form goes, so that nobody can farm agencies or flood a mailbox.

Counters live in Django's cache (Redis), in fixed windows that start with the first request
(an atomic INCR on a key that expires with the window). Django's cache prefixes every key
with the current schema; we add the database name, because one Redis can serve several
databases whose schema names repeat. Addresses are hashed, never stored in keys.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from apps.common.client_ip import client_ip
from tenants.db import connection

Scope = Literal["ip", "address", "key"]


def _key(*parts: str) -> str:
    return ":".join(["throttle", str(connection.settings_dict["NAME"]), *parts])


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
class RateLimited:
    scope: Scope
    limit: int
    window: int  # seconds
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))

    @property
    def window_minutes(self) -> int:
        return max(1, self.window // 60)

    def sentence(self, what: str) -> str:
        """'Too many <what> from your network: at most 5 every 10 minutes. Please try again in 9 minutes.'"""
        where = "from your network" if self.scope == "ip" else "for this address"
        return (
            f"Too many {what} {where}: at most {self.limit} every {self.window_minutes} minutes. "
            f"Please try again in {self.minutes} minute{'s' if self.minutes != 1 else ''}."
        )


def _hit(name: str, scope: Scope, ident: str, *, limit: int, window: int) -> RateLimited | None:
    key = _key("rate", name, scope, ident)
    cache.add(f"{key}:start", time.time(), timeout=window)
    if _count(key, window) <= limit:
        return None
    started = float(cache.get(f"{key}:start") or time.time())
    retry = max(1, int(started + window - time.time()) + 1)
    return RateLimited(scope=scope, limit=limit, window=window, retry_after=retry)


def _address_id(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:32]


def throttle_hit(request: HttpRequest, name: str, *, address: str | None = None) -> RateLimited | None:
    """Count one request to `name` from this client (and for `address`, already normalised);
    return the limit it went over, if any (settings.THROTTLES[name]: ip, address, window)."""
    rule = settings.THROTTLES[name]
    window = int(rule["window"])
    ip = client_ip(request) or "unknown"
    over = _hit(name, "ip", ip, limit=int(rule["ip"]), window=window)
    if address:
        by_address = _hit(name, "address", _address_id(address), limit=int(rule["address"]), window=window)
        over = over or by_address
    return over


def throttle_key_hit(name: str, key_id: str, *, limit: int, window: int) -> RateLimited | None:
    """Count one request made with an API key (its id) against `limit` per `window` seconds."""
    return _hit(name, "key", key_id, limit=limit, window=window)
