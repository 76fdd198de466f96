"""Every request under /api/: signed with an API key (never a session), counted against the
key's rate limit, and, for a POST with an Idempotency-Key, answered once.

Here rather than in django-ninja's auth hook because the answer to a replayed POST must be
given before the view runs, and the session's user must never act on the API (no CSRF token
protects these URLs: a browser's cookie must not be enough)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.api.errors import error_response
from apps.api.keys import api_key_authenticate
from apps.api.models import ApiKey, IdempotentAnswer
from apps.common.throttle import throttle_key_hit

API_PREFIX = "/api/"
# Pages of the API that need no key: its description and its docs page.
OPEN_PATHS = {"/api/v1/openapi.json", "/api/v1/docs"}
IDEMPOTENCY_HOURS = 24


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


class ApiKeyMiddleware:
    """After AuthenticationMiddleware: replaces the session's user with the key's member."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_request(request) or getattr(request, "tenant", None) is None:
            return self.get_response(request)
        request.api_request = True  # type: ignore[attr-defined]
        request.user = AnonymousUser()
        if request.path in OPEN_PATHS:
            return self.get_response(request)
        key = self._key(request)
        if key is None:
            return error_response(
                401,
                "unauthenticated",
                "Send a valid API key: `Authorization: Bearer pl_…`. "
                "It may have been revoked or have expired.",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        request.user = key.member
        request.api_key = key  # type: ignore[attr-defined]
        limit, window = settings.API_RATE_LIMIT
        over = throttle_key_hit("api", str(key.pk), limit=limit, window=window)
        if over is not None:
            return error_response(
                429,
                "rate_limited",
                f"Too many requests with this key: at most {limit} every {window} seconds. "
                f"Try again in {over.retry_after} seconds.",
                headers={"Retry-After": str(over.retry_after)},
            )
        idempotency_key = request.headers.get("Idempotency-Key", "")
        if request.method == "POST" and idempotency_key:
            return self._once(request, key, idempotency_key)
        return self.get_response(request)

    @staticmethod
    def _key(request: HttpRequest) -> ApiKey | None:
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return None
        return api_key_authenticate(raw.strip(), request=request)

    def _once(self, request: HttpRequest, key: ApiKey, idempotency_key: str) -> HttpResponse:
        """The first answer for this key and Idempotency-Key, whatever the number of tries."""
        if len(idempotency_key) > 255:
            return error_response(
                400, "invalid_idempotency_key", "An Idempotency-Key is at most 255 characters."
            )
        digest = hashlib.sha256(
            b"\n".join([(request.method or "").encode(), request.get_full_path().encode(), request.body])
        ).hexdigest()
        answer = self._claim(key, idempotency_key, digest)
        if answer is not None:
            if answer.request_hash != digest:
                return error_response(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request in the last 24 hours: "
                    "use a new key for a new request.",
                )
            if answer.status is None:
                return error_response(
                    409,
                    "request_in_progress",
                    "The first request with this Idempotency-Key is still running: try again shortly.",
                    headers={"Retry-After": "1"},
                )
            replay = HttpResponse(bytes(answer.body), status=answer.status, content_type=answer.content_type)
            replay["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = self.get_response(request)
        except BaseException:
            IdempotentAnswer.objects.filter(api_key=key, key=idempotency_key).delete()
            raise
        if response.status_code >= 500 or response.streaming:
            # Nothing was done, or we cannot tell: the client's retry runs again.
            IdempotentAnswer.objects.filter(api_key=key, key=idempotency_key).delete()
        else:
            IdempotentAnswer.objects.filter(api_key=key, key=idempotency_key).update(
                status=response.status_code,
                body=response.content,
                content_type=response.get("Content-Type", ""),
            )
        return response

    @staticmethod
    def _claim(key: ApiKey, idempotency_key: str, digest: str) -> IdempotentAnswer | None:
        """None when this request is the first (its row now claims the key), else what is stored."""
        cutoff = timezone.now() - dt.timedelta(hours=IDEMPOTENCY_HOURS)
        for _ in range(2):
            try:
                with transaction.atomic():
                    IdempotentAnswer.objects.create(api_key=key, key=idempotency_key, request_hash=digest)
                return None
            except IntegrityError:
                stored = IdempotentAnswer.objects.filter(api_key=key, key=idempotency_key).first()
                if stored is None:
                    continue  # it was removed meanwhile: claim it again
                if stored.created_at < cutoff:
                    stored.delete()
                    continue
                return stored
        return IdempotentAnswer.objects.filter(api_key=key, key=idempotency_key).first()
