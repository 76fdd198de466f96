"""What every log line carries: the request id, the agency's schema and, in workers, the
Dramatiq message id (LOGGING in config/settings.py adds them with `ContextFilter`).

The request id comes from `RequestContextMiddleware` (apps/common/middleware.py), the message
id from `WorkerContextMiddleware` (apps/common/worker_context.py); the schema is read from the
thread's database connection at the moment the line is written, so it is right in both.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from django.db import connection
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="")
message_id: ContextVar[str] = ContextVar("message_id", default="")


def current_schema() -> str:
    """The schema the thread's connection is set to ("" before Django is ready)."""
    try:
        return str(getattr(connection, "schema_name", "") or "")
    except Exception:  # a log line must never fail because Django is not set up
        return ""


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.message_id = message_id.get()
        record.schema = current_schema()
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, the context above and the
    record's extras, except the request object Django attaches to its request warnings,
    whose repr carries the query string (and so one-time codes and tokens)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "server_time"])
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
