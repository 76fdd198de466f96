"""`/healthz`, `/readyz` and `/metrics`, answered before the host is routed to an agency.

- `/healthz`: the process is alive and answering (no dependency is touched).
- `/readyz`: PostgreSQL, Redis (cache and broker) and the default storage answer, and no
  migration of the public or base schema is pending; 503 naming the failed checks otherwise.
  A load balancer sends traffic only to a ready process.
- `/metrics`: Prometheus text (apps/common/metrics.py), only with
  `Authorization: Bearer <METRICS_TOKEN>`; without the setting it does not exist (404).

They answer on the root domain and its aliases, and on an IP address or `localhost` (health
checkers and Prometheus talk to the process by address); on an agency's host they are that
agency's URLs (404).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from typing import cast

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection as _connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django_tenants.postgresql_backend.base import DatabaseWrapper

from apps.common.metrics import metrics_render

logger = logging.getLogger(__name__)
connection = cast(DatabaseWrapper, _connection)

PATHS = ("/healthz", "/readyz", "/metrics")
# The object the storage check asks about; it never exists, the answer is what counts.
STORAGE_PROBE = "readyz-probe"

_migrations_applied = False  # once true, true for the life of the process


def _is_direct_host(request: HttpRequest) -> bool:
    host, _port = split_domain_port(request.META.get("HTTP_HOST", "") or request.META.get("SERVER_NAME", ""))
    host = host.lower()
    if host in {settings.PLATFORM_DOMAIN, *settings.PUBLIC_HOST_ALIASES, "localhost"}:
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _check_database() -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_migrations() -> None:
    global _migrations_applied
    if _migrations_applied:
        return
    for schema in ("public", settings.TENANT_BASE_SCHEMA):
        connection.set_schema(schema)
        try:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        finally:
            connection.set_schema_to_public()
        if pending:
            raise RuntimeError(f"{len(pending)} migration(s) pending in {schema}")
    _migrations_applied = True


def _check_redis() -> None:
    for url in dict.fromkeys([settings.REDIS_URL, settings.DRAMATIQ_BROKER_URL]):
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()


def _check_storage() -> None:
    # Media keys live under an agency's prefix; the base schema's is one no agency uses.
    connection.set_schema(settings.TENANT_BASE_SCHEMA)
    try:
        default_storage.exists(STORAGE_PROBE)
    finally:
        connection.set_schema_to_public()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "migrations": _check_migrations,
    "redis": _check_redis,
    "storage": _check_storage,
}


def readiness() -> dict[str, str]:
    """Each check's outcome, "ok" or "failed" (the reason is logged, never shown)."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "failed"
            continue
        try:
            check()
            results[name] = "ok"
        except Exception:
            logger.exception("readiness check %s failed", name)
            results[name] = "failed"
    return results


def _metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token:
        return HttpResponse("Not found", status=404, content_type="text/plain")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponse("A valid metrics token is required.", status=401, content_type="text/plain")
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4; charset=utf-8")


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/") or "/"
        if path not in PATHS or not _is_direct_host(request):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponse("Method not allowed", status=405, headers={"Allow": "GET, HEAD"})
        if path == "/healthz":
            response: HttpResponse = JsonResponse({"status": "ok"})
        elif path == "/readyz":
            results = readiness()
            ready = all(value == "ok" for value in results.values())
            response = JsonResponse(
                {"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503
            )
        else:
            response = _metrics(request)
        response["Cache-Control"] = "no-store"
        return response
