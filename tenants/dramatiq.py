"""Dramatiq messages carry the agency they belong to.

`TenantMiddleware` stamps the current schema on every message at enqueue time and enters
that schema before the actor runs (leaving it after). It fails closed:

- a message without a schema is refused unless its actor is declared `tenant_free=True`
  (jobs that walk every agency);
- a message for an agency that does not exist, or that is not active (suspended, deleted),
  is refused (dead-lettered), unless its actor is declared `inactive_agency_ok=True` (the
  offboarding jobs that must run for a deleted agency);
- any error while choosing the agency (the database unreachable, a lock timeout) stops the
  message before the actor runs; Dramatiq's Retries middleware then retries it with backoff
  or, once out of retries, dead-letters it.

An actor can never run in the wrong agency, or in none, by accident.
`send_on_commit` sends only once the surrounding transaction commits.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from django.db import transaction
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from tenants.db import connection
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)

SCHEMA_OPTION = "tenant_schema"


class MissingTenant(RuntimeError):
    pass


class AgencyUnavailable(MiddlewareError):
    """The agency of a message could not be chosen. Raised before the actor runs; unlike
    `SkipMessage`, Dramatiq treats it as the message's failure (retry, then dead letter)."""


class TenantMiddleware(Middleware):
    @property
    def actor_options(self) -> set[str]:
        return {"tenant_free", "inactive_agency_ok"}

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int) -> None:
        if SCHEMA_OPTION not in message.options:
            schema = getattr(connection, "schema_name", "public")
            if schema != "public":
                message.options[SCHEMA_OPTION] = schema

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        try:
            self._enter_agency(broker, message)
        except SkipMessage:
            raise
        except Exception as exc:
            # Dramatiq logs and ignores other errors in middleware and runs the actor anyway:
            # in no agency's schema. Turn it into the message's own failure instead.
            connection.set_schema_to_public()
            logger.warning("Held back %s: its agency could not be chosen (%r)", message.actor_name, exc)
            raise AgencyUnavailable(f"the agency of {message.actor_name} could not be chosen") from exc

    def _enter_agency(self, broker: dramatiq.Broker, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        schema = message.options.get(SCHEMA_OPTION)
        connection.set_schema_to_public()
        if schema is None:
            if actor.options.get("tenant_free"):
                return
            self._refuse(message, f"{message.actor_name} needs an agency and the message names none")
        status = Agency.objects.filter(schema_name=schema).values_list("status", flat=True).first()
        if status is None:
            self._refuse(message, f"no agency has schema {schema}")
        if status != AgencyStatus.ACTIVE and not actor.options.get("inactive_agency_ok"):
            self._refuse(message, f"the agency of schema {schema} is {status}")
        connection.set_schema(schema)

    @staticmethod
    def _refuse(message: Any, reason: str) -> None:
        logger.error("Refused %s: %s", message.actor_name, reason)
        message.fail()
        raise SkipMessage(reason)

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
