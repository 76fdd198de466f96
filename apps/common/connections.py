"""Database connections in long-lived processes (workers, the scheduler).

Django checks its connections around each web request; a Dramatiq worker thread or the
scheduler loop has no requests, so without this a connection that died (a PostgreSQL
restart, a failover, an idle timeout) would be kept and fail every message that thread
takes, until the process is restarted. With `CONN_HEALTH_CHECKS` on, `close_old_connections`
makes the next query test the connection first and reconnect when it is dead.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from django.db import close_old_connections, connections
from dramatiq.middleware import Middleware


def connections_refresh() -> None:
    """Before a unit of work: drop connections that are broken or too old (checked lazily)."""
    close_old_connections()


class DatabaseConnectionsMiddleware(Middleware):
    """Checks the worker thread's connections before and after every message.

    Added before the tenant middleware, whose agency check is the first query of a message.
    (django-dramatiq has the same few lines, but it brings its own broker set-up and app.)"""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        connections_refresh()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        connections_refresh()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        connections_refresh()

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: Any) -> None:
        connections.close_all()
