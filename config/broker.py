"""The Dramatiq broker (Redis), set up once per process before any actor is declared."""

from __future__ import annotations

import dramatiq
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker

from apps.common.connections import DatabaseConnectionsMiddleware
from apps.common.worker_context import WorkerContextMiddleware
from tenants.dramatiq import TenantMiddleware


def setup_broker() -> RedisBroker:
    broker = RedisBroker(url=settings.DRAMATIQ_BROKER_URL, namespace=settings.DRAMATIQ_NAMESPACE)
    # Connections are checked before the tenant middleware makes the message's first query.
    broker.add_middleware(DatabaseConnectionsMiddleware())
    # The message id is in the log lines of the middleware after it.
    broker.add_middleware(WorkerContextMiddleware())
    broker.add_middleware(TenantMiddleware())
    dramatiq.set_broker(broker)
    return broker
