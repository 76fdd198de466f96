"""The Dramatiq broker (Redis), set up once per process before any actor is declared."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import DecodeError

from apps.common.connections import DatabaseConnectionsMiddleware
from apps.common.worker_context import WorkerContextMiddleware
from tenants.dramatiq import TenantMiddleware

logger = logging.getLogger(__name__)


class _Consumer(_RedisConsumer):
    """Dead-letters what cannot be read, without holding back what was fetched with it.

    Dramatiq's own consumer raises on bytes that do not decode to a message: its consumer thread
    restarts and every other message of the same fetch stays taken (in this worker's acks, until
    the worker stops), neither run nor dead-lettered. Here such a message, or one without the
    Redis id it would be acknowledged by, goes to the queue's dead letters (the `dead_letters`
    command lists it) and the next one is read. (A message for an unknown actor is dead-lettered
    by Dramatiq's worker itself.)"""

    def __next__(self) -> Any:
        while True:
            data = self.message_cache[0] if self.message_cache else None
            try:
                message = super().__next__()
            except DecodeError as exc:
                self._dead_letter(exc.data, "it cannot be read")
                continue
            if message is not None and "redis_message_id" not in message.options:
                self.queued_message_ids.discard(message.message_id)
                self._dead_letter(data, "it has no Redis id")
                continue
            return message

    def _dead_letter(self, data: Any, why: str) -> None:
        """Move the taken message whose stored bytes are `data` to the dead letters."""
        broker = self.broker
        acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{self.queue_name}"
        ids = sorted(broker.client.smembers(acks))
        stored = broker.client.hmget(f"{broker.namespace}:{self.queue_name}.msgs", ids) if ids else []
        for redis_id, value in zip(ids, stored, strict=True):
            if value == data:
                broker.do_nack(self.queue_name, redis_id.decode())
                logger.error(
                    "Moved message %s of queue %s to the dead letters: %s",
                    redis_id.decode(),
                    self.queue_name,
                    why,
                )
                return
        logger.error(
            "A message of queue %s was dropped: %s (and it was not found to dead-letter)",
            self.queue_name,
            why,
        )


class Broker(RedisBroker):
    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _Consumer


def setup_broker() -> RedisBroker:
    broker = Broker(url=settings.DRAMATIQ_BROKER_URL, namespace=settings.DRAMATIQ_NAMESPACE)
    # Connections are checked before the tenant middleware makes the message's first query.
    broker.add_middleware(DatabaseConnectionsMiddleware())
    # The message id is in the log lines of the middleware after it.
    broker.add_middleware(WorkerContextMiddleware())
    broker.add_middleware(TenantMiddleware())
    dramatiq.set_broker(broker)
    return broker
