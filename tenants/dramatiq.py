"""Dramatiq messages carry the agency they belong to.

`TenantMiddleware` stamps the current schema on every message at enqueue time and enters
that schema before the actor runs (leaving it after). A message without a schema is
refused unless its actor is declared `tenant_free=True` (jobs that walk every agency):
an actor can never run in the wrong agency by accident.
`send_on_commit` sends only once the surrounding transaction commits.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from django.db import transaction
from dramatiq.middleware import Middleware, SkipMessage

from tenants.db import connection

logger = logging.getLogger(__name__)

SCHEMA_OPTION = "tenant_schema"


class MissingTenant(RuntimeError):
    pass


class TenantMiddleware(Middleware):
    @property
    def actor_options(self) -> set[str]:
        return {"tenant_free"}

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int) -> None:
        if SCHEMA_OPTION not in message.options:
            schema = getattr(connection, "schema_name", "public")
            if schema != "public":
                message.options[SCHEMA_OPTION] = schema

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        schema = message.options.get(SCHEMA_OPTION)
        if schema is None:
            if actor.options.get("tenant_free"):
                connection.set_schema_to_public()
                return
            logger.error("Refused %s: the message names no agency", message.actor_name)
            message.fail()
            raise SkipMessage(f"{message.actor_name} needs an agency and the message names none")
        from tenants.models import Agency

        connection.set_schema_to_public()
        if not Agency.objects.filter(schema_name=schema).exists():
            logger.error("Refused %s: no agency has schema %s", message.actor_name, schema)
            message.fail()
            raise SkipMessage(f"no agency has schema {schema}")
        connection.set_schema(schema)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        connection.set_schema_to_public()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        connection.set_schema_to_public()


def send_on_commit(actor: dramatiq.Actor, *args: Any, **kwargs: Any) -> None:
    """Build the message now (stamping the current agency) and send it after commit."""
    message = actor.message(*args, **kwargs)
    schema = getattr(connection, "schema_name", "public")
    if schema != "public":
        message.options[SCHEMA_OPTION] = schema
    transaction.on_commit(lambda: actor.broker.enqueue(message))
