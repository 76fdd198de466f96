"""TikTok's per-token rate limits, shared by every process through Redis.

A sliding window per (endpoint, token): a call that would exceed the limit waits for a
free slot or, when waiting is not allowed or would take too long, raises `RateLimited`
without sending anything; when Redis cannot be reached it raises `RateLimiterUnavailable`,
again without sending anything. The window is kept in a Redis sorted set and checked and
updated by one Lua script, using Redis's clock, so all workers agree.
Tokens are identified by a hash, never stored.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from apps.common.crypto import Secret
from apps.tiktok.errors import RateLimited, RateLimiterUnavailable

WINDOW_SECONDS = 60
# Our window starts when a call is sent, TikTok's when it arrives: a call held back exactly one
# window after the first could still land inside TikTok's. Each slot is kept this much longer.
SAFETY_MARGIN_SECONDS = 3
# Requests per minute per user token (TIKTOK_API.md, "Caps and limits").
LIMITS = {"creator_info": 20, "init": 6, "inbox_init": 6, "content_init": 6, "status": 30}
# Direct, inbox and photo init share one budget.
BUCKETS = {"inbox_init": "init", "content_init": "init"}

_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = now_parts[1] * 1000 + math.floor(now_parts[2] / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@lru_cache(maxsize=4)
def redis_client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or settings.REDIS_URL)


def token_fingerprint(token: Secret | str) -> str:
    value = token.reveal() if isinstance(token, Secret) else token
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimiter:
    def __init__(self, client: redis.Redis | None = None, *, prefix: str = "tiktok:rl") -> None:
        self.redis = client or redis_client()
        self.prefix = prefix
        self._script: Any = self.redis.register_script(_ACQUIRE)

    def try_acquire(self, endpoint: str, token: Secret | str) -> float:
        """Take a slot now and return 0, or return the seconds until one frees up.
        Raises RateLimiterUnavailable (nothing sent) when Redis cannot be asked."""
        limit = LIMITS.get(endpoint)
        if limit is None:
            return 0.0
        key = f"{self.prefix}:{BUCKETS.get(endpoint, endpoint)}:{token_fingerprint(token)}"
        window_ms = (WINDOW_SECONDS + SAFETY_MARGIN_SECONDS) * 1000
        try:
            wait_ms = int(self._script(keys=[key], args=[window_ms, limit, uuid.uuid4().hex]))
        except redis.RedisError as exc:
            # Without the shared window we cannot know the call is allowed: it is not sent, and
            # the caller retries it like any call held back on our side.
            raise RateLimiterUnavailable(endpoint, type(exc).__name__) from exc
        return wait_ms / 1000.0

    def acquire(self, endpoint: str, token: Secret | str, *, max_wait: float = 0.0) -> None:
        """Block up to `max_wait` seconds for a slot; raise RateLimited past that (nothing sent)."""
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.try_acquire(endpoint, token)
            if wait == 0:
                return
            if time.monotonic() + wait > deadline:
                raise RateLimited(endpoint, wait)
            time.sleep(wait)
