"""Run the scheduler: the publishing dispatcher every second, periodic jobs when due."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

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
                    connections_refresh()  # a dead connection (database restart) is replaced first
                    sent = dispatch_due()
                    if sent:
                        logger.info("Dispatched %d job(s)", len(sent))
                    full = len(sent) >= BATCH
                    if started - last_periodic >= settings.SCHEDULER_PERIODIC_SECONDS:
                        run_due_jobs()
                        last_periodic = started
                except Exception:
                    # A database or Redis hiccup must not stop the scheduler: log, reconnect, go on.
                    logger.exception("Scheduler tick failed")
                    connection.close()
                if not full:  # a full batch: more may be due, take it without a pause
                    time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
        except KeyboardInterrupt:
            self.stdout.write("Scheduler stopped.")
