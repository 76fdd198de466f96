"""Entry module for Dramatiq workers: `dramatiq config.worker` (see `manage.py run_worker`).

Sets Django up (which sets the broker up), imports every module that declares actors, and
refuses a database behind a transaction-pooling proxy (apps/common/database.py).
"""

import os
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from prometheus_client import make_wsgi_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Persistent connections with a bounded lifetime: a worker's threads are fixed, and
# apps/common/worker_context.py closes a connection past its age between messages.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "300")
django.setup()

from apps.common.database import database_refuse_transaction_pooling  # noqa: E402
from apps.common.metrics import metrics_registry  # noqa: E402
from config.tasks import TASK_MODULES  # noqa: E402

for _module in TASK_MODULES:
    __import__(_module)
database_refuse_transaction_pooling()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged (and a plain-text line would break the JSON log)."""


def metrics_server() -> None:
    """A fork of the worker's main process (`run_worker --metrics-port`): serves this host's
    metrics, summed over its worker processes, on an internal port."""
    app = make_wsgi_app(metrics_registry())
    host = os.environ.get("POSTLINE_METRICS_HOST", "127.0.0.1")
    port = int(os.environ["POSTLINE_METRICS_PORT"])
    with make_server(host, port, app, handler_class=_QuietHandler) as server:
        server.serve_forever()
