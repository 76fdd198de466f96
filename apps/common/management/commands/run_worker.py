"""Run Dramatiq workers for every actor of the project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Start Dramatiq worker processes (`dramatiq config.worker`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)
        parser.add_argument("--queues", nargs="*", default=[])
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=0,
            help="Serve this host's worker metrics (Prometheus) on this internal port.",
        )
        parser.add_argument("--metrics-host", default="127.0.0.1", help="Address the metrics port binds.")

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
        if settings.LOG_FORMAT == "json":
            # Every line comes from Django's logging (one JSON object each), none from Dramatiq's.
            argv.append("--skip-logging")
        if options["metrics_port"]:
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                raise CommandError("--metrics-port needs PROMETHEUS_MULTIPROC_DIR (a folder of this host's).")
            os.environ["POSTLINE_METRICS_PORT"] = str(options["metrics_port"])
            os.environ["POSTLINE_METRICS_HOST"] = options["metrics_host"]
            argv += ["--fork-function", "config.worker:metrics_server"]
        if multiproc := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Samples of a previous run's processes must not be summed with this run's.
            shutil.rmtree(multiproc, ignore_errors=True)
            Path(multiproc).mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        os.execv(sys.executable, argv)  # noqa: S606  (replace this process with the worker)
