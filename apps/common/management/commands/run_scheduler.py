"""Run the scheduler: the publishing dispatcher every second, periodic jobs when due."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connection

from apps.common.connections import connections_refresh
from apps.common.database import database_refuse_transaction_pooling
from apps.common.scheduler import run_due_jobs
from apps.publishing.dispatcher import BATCH, dispatch_due

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Hand due posts to the workers (every --interval seconds) and send daily jobs when due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between dispatcher ticks.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Claims run in each agency's schema: a transaction-pooling proxy could mix them up.
        database_refuse_transaction_pooling()
        self.stdout.write("Scheduler running; Ctrl-C to stop.")
        last_periodic = 0.0
        try:
            while True:
                started = time.monotonic()
                full = False
                try:
                    full, ran_periodic = self._tick(started - last_periodic)
                except Exception as exc:
                    full, ran_periodic = False, False
                    connection.close()
                    if isinstance(exc, DatabaseError):
                        # A connection cut during the tick (a database restart, a failover), or a
                        # statement that lost to another (a deadlock): the tick again at once, on a
                        # new connection. A tick only hands out due rows under leases, in one
                        # transaction: one cut short left nothing half-done. Only a tick that fails
                        # twice in a row is reported as failed.
                        logger.warning(
                            "A tick failed on a database error; trying again at once", exc_info=True
                        )
                        try:
                            full, ran_periodic = self._tick(started - last_periodic)
                        except Exception:
                            logger.exception("Scheduler tick failed")
                            connection.close()
                    else:
                        # A Redis hiccup must not stop the scheduler: log, reconnect, go on.
                        logger.exception("Scheduler tick failed")
                if ran_periodic:
                    last_periodic = started
                if not full:  # a full batch: more may be due, take it without a pause
                    time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
        except KeyboardInterrupt:
            self.stdout.write("Scheduler stopped.")

    def _tick(self, since_periodic: float) -> tuple[bool, bool]:
        """(whether the batch was full, whether the periodic jobs ran)."""
        connections_refresh()  # a dead connection (database restart) is replaced first
        sent = dispatch_due()
        if sent:
            logger.info("Dispatched %d job(s)", len(sent))
        periodic = since_periodic >= settings.SCHEDULER_PERIODIC_SECONDS
        if periodic:
            run_due_jobs()
        return len(sent) >= BATCH, periodic
