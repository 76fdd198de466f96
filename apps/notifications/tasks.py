"""Notification actors. Thin: ids in; the agency travels in the message.

Dramatiq does not retry them: the rows decide. A lost message, a killed worker or a mail
server that was down is picked up by the sweep (`notifications_sweep`, sent by the scheduler
every NOTIFICATIONS_SWEEP_SECONDS), which walks the agencies for rows whose time has come.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import dramatiq
from django.conf import settings
from django.db import transaction
from django_tenants.utils import schema_context

from apps.notifications import delivery
from apps.notifications.outbox import Fanout
from tenants.db import connection
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import Agency, AgencyStatus


@dramatiq.actor(queue_name="notify", max_retries=0, time_limit=5 * 60 * 1000)
def notifications_email_send(user_id: str) -> None:
    delivery.notification_email_deliver(user_id=user_id)


@dramatiq.actor(queue_name="notify", max_retries=0, time_limit=5 * 60 * 1000)
def notifications_chat_send(delivery_id: str) -> None:
    delivery.chat_delivery_attempt(delivery_id=delivery_id)


@dramatiq.actor(queue_name="notify", max_retries=0, tenant_free=True, time_limit=10 * 60 * 1000)
def notifications_sweep() -> None:
    """In every active agency: write due digests, then send what waits (held, lost, retried)."""
    for agency in Agency.objects.filter(status=AgencyStatus.ACTIVE).only("schema_name"):
        with schema_context(agency.schema_name):
            digests = delivery.digests_write()
            users, deliveries = delivery.due_work()
        send_fanout(
            Fanout(email_user_ids=set(users) | digests.email_user_ids, chat_delivery_ids=deliveries),
            schema_name=agency.schema_name,
            delay_ms=0,
        )
    connection.set_schema_to_public()


def _send(actor: dramatiq.Actor, ids: Iterable[uuid.UUID], schema_name: str, delay_ms: int) -> None:
    for value in ids:
        message = actor.message(str(value))
        message.options[SCHEMA_OPTION] = schema_name
        actor.broker.enqueue(message, delay=delay_ms or None)


def send_fanout(fanout: Fanout, *, schema_name: str, delay_ms: int | None = None) -> None:
    """Send the messages for `fanout` now. Email waits NOTIFICATIONS_EMAIL_GROUP_SECONDS first,
    so a burst of events reaches each person as one email."""
    if delay_ms is None:
        delay_ms = int(settings.NOTIFICATIONS_EMAIL_GROUP_SECONDS * 1000)
    _send(notifications_email_send, sorted(fanout.email_user_ids), schema_name, delay_ms)
    _send(notifications_chat_send, fanout.chat_delivery_ids, schema_name, 0)


def send_fanout_on_commit(fanout: Fanout) -> None:
    if not fanout:
        return
    schema_name = connection.schema_name
    transaction.on_commit(lambda: send_fanout(fanout, schema_name=schema_name), robust=True)
