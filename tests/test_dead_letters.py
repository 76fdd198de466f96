"""Dead-lettered messages can be listed and requeued by an operator."""

from __future__ import annotations

import io
from typing import Any

import dramatiq
from django.core.management import call_command

from apps.accounts.tasks import accounts_sync_stats
from tests.conftest import wait_for


def dead_letter_ids() -> list[str]:
    broker: Any = dramatiq.get_broker()
    raw = broker.client.hvals(f"{broker.namespace}:stats.XQ.msgs")
    return [dramatiq.Message.decode(value).message_id for value in raw]


def test_refused_message_is_dead_lettered_listed_and_requeued(worker: Any, django_db_blocker: Any) -> None:
    # Given a message the worker must refuse (a tenant job that names no agency)
    message = accounts_sync_stats.send("00000000-0000-0000-0000-000000000000")
    wait_for(lambda: message.message_id in dead_letter_ids(), timeout=30)

    # When an operator lists the dead letters, then requeues that one
    listing = io.StringIO()
    with django_db_blocker.unblock():
        call_command("dead_letters", stdout=listing)
    assert message.message_id in listing.getvalue() and "accounts_sync_stats" in listing.getvalue()
    requeue = io.StringIO()
    with django_db_blocker.unblock():
        call_command("dead_letters", "--requeue", message.message_id, stdout=requeue)

    # Then it left the dead-letter queue, ran again, and (still naming no agency) came back
    assert "1 requeued" in requeue.getvalue()
    wait_for(lambda: message.message_id in dead_letter_ids(), timeout=30)
