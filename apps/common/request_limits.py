"""Request bodies are bounded before anything reads them.

Every view accepts at most REQUEST_BODY_MAX_BYTES of body; a view that streams an upload
declares its own, larger limit (`request_body_limit()`, set by apps.media.uploads.streams_upload).
A request announcing more is answered 413 at once, before the session, CSRF or form parsing
touch the body (under /api/ in the API's JSON error shape). Bodies without a Content-Length are
read as empty by Django, so the announced length is what counts (the WSGI stream never yields
more than it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.api.errors import error_response


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        declared = getattr(view, "request_body_limit", None)
        limit = declared() if declared is not None else settings.REQUEST_BODY_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= limit:
            return None
        if request.path.startswith("/api/"):  # the API answers every error in its own JSON shape
            return _api_refusal(length, limit)
        return TemplateResponse(
            request,
            "413.html",
            {"limit_text": _size_text(limit), "invalid": length < 0},
            status=400 if length < 0 else 413,
        )


def _api_refusal(length: int, limit: int) -> HttpResponse:
    if length < 0:
        return error_response(400, "invalid_content_length", "Content-Length is not a number.")
    return error_response(
        413,
        "body_too_large",
        f"The request body is {length} bytes; this endpoint accepts at most {limit} bytes "
        f"({_size_text(limit)}). Send the file in smaller chunks.",
        extra={"limit_bytes": limit},
    )


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.0f} {unit}"
    return f"{size} bytes"
