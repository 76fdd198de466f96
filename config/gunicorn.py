"""gunicorn, the production web server: `gunicorn -c config/gunicorn.py config.wsgi`.

Sizing (each can be set from the environment):
- WEB_CONCURRENCY worker processes, default 2 per core: a process is the unit of CPU (the GIL);
- GUNICORN_THREADS threads each (gthread), default 4: requests mostly wait on PostgreSQL,
  Redis or a slow client (a video upload streams for minutes on one thread), so a few threads
  per process keep the CPU busy without more memory;
- each thread keeps at most one database connection for DATABASE_CONN_MAX_AGE (300 s here):
  a web host opens at most WEB_CONCURRENCY x GUNICORN_THREADS connections.
Scale the web tier out by adding hosts behind the load balancer (nothing is kept on disk),
and up by WEB_CONCURRENCY; raise threads only while PostgreSQL has connections to spare.

Access logs are off: the application writes one line per request itself, with the request id
and without query strings (apps/common/middleware.py).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess

# Persistent connections are safe here: the threads are fixed and few.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "300")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A worker that stops answering its heartbeat this long is replaced (a long upload does not
# count: with gthread the heartbeat comes from the main thread).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Headers and request lines stay small; bodies are bounded by the application.
limit_request_line = 8190
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108  (heartbeat files)
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            # Not apps.common.logs: the master process never loads Django.
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "root": {"level": loglevel.upper(), "handlers": ["console"]},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "level": loglevel.upper(), "propagate": False},
            # A logging config turns gunicorn's access log on: keep it silent (see above).
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: a previous run's samples must not be summed in."""
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
