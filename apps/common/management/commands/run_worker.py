"""Run Dramatiq workers for every actor of the project."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Start Dramatiq worker processes (`dramatiq config.worker`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)
        parser.add_argument("--queues", nargs="*", default=[])

    def handle(self, *args: Any, **options: Any) -> None:
        argv = [
            sys.executable,
            "-m",
            "dramatiq",
            "config.worker",
            "--processes",
            str(options["processes"]),
            "--threads",
            str(options["threads"]),
        ]
        if options["queues"]:
            argv += ["--queues", *options["queues"]]
        sys.stdout.flush()
        os.execv(sys.executable, argv)  # noqa: S606  (replace this process with the worker)
