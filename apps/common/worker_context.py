"""Dramatiq middleware for every worker thread: the message id in each log line it writes
while it handles the message (apps/common/logs.py)."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from apps.common import logs


class WorkerContextMiddleware(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        logs.message_id.set(message.message_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        logs.message_id.set("")

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        logs.message_id.set("")
