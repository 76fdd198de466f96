"""The first middleware: a request id for every request, and one log line per response.

The id is the proxy's `X-Request-ID` when it sent a sane one (so a request can be followed
from the load balancer to the worker), else a new one; the response carries it back. The log
line names the path without its query string: one-time tokens (OAuth codes, password-reset
and welcome links) travel in query strings and paths, so neither the query nor the raw URL is
logged by us, and gunicorn's own access log is off (config/gunicorn.py).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from apps.common import logs

logger = logging.getLogger("postline.request")

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def _route(request: HttpRequest) -> str:
    """The matched URL pattern (`posts/<uuid:pk>/`), never the path's own ids or tokens."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return "(unmatched)"
    return "/" + str(match.route)


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Kept until the response is finished (see below): Django logs 4xx/5xx after the
        # middleware has returned.
        logs.request_id.set(rid)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        route = _route(request)
        logger.log(
            logging.DEBUG if request.path_info in ("/healthz", "/readyz", "/metrics") else logging.INFO,
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response


@receiver(request_finished, dispatch_uid="postline-request-id-clear")
def _clear_request_id(**kwargs: object) -> None:
    logs.request_id.set("")
