"""Run the periodic-job scheduler until interrupted."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.common.scheduler import run_due_jobs


class Command(BaseCommand):
    help = "Send periodic jobs (daily stats snapshots, ...) to the workers when they are due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=30.0, help="Seconds between checks.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Scheduler running; Ctrl-C to stop.")
        try:
            while True:
                for name in run_due_jobs():
                    self.stdout.write(f"sent {name}")
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            self.stdout.write("Scheduler stopped.")
