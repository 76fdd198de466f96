"""Dead-lettered messages can be listed and requeued by an operator."""

from __future__ import annotations

import io
import uuid
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


def test_unreadable_and_unknown_messages_are_dead_lettered_without_holding_back_the_others(
    worker: Any, django_db_blocker: Any
) -> None:
    # Given, in one batch a worker fetches, bytes that are no message, a message for an actor that
    # does not exist, and two ordinary messages after them
    broker: Any = dramatiq.get_broker()
    counter = f"{broker.namespace}:noop-{uuid.uuid4().hex[:8]}"
    garbage, unknown = f"garbage-{uuid.uuid4().hex[:8]}", f"unknown-{uuid.uuid4().hex[:8]}"
    batch = [
        (garbage, b"\xff\x00 not a message"),
        (unknown, raw_message("no_such_actor", (), unknown)),
        *(
            (mid, raw_message("publishing_noop", (counter,), mid))
            for mid in (uuid.uuid4().hex, uuid.uuid4().hex)
        ),
    ]
    with broker.client.pipeline(transaction=True) as pipe:
        for mid, data in batch:
            pipe.hset(f"{broker.namespace}:bench.msgs", mid, data)
            pipe.rpush(f"{broker.namespace}:bench", mid)
        pipe.execute()

    # Then the ordinary ones run at once, and the other two are dead letters the command lists
    wait_for(lambda: broker.client.get(counter) == b"2", timeout=20)
    dead = f"{broker.namespace}:bench.XQ.msgs"
    wait_for(lambda: {garbage.encode(), unknown.encode()} <= set(broker.client.hkeys(dead)), timeout=10)
    listing = io.StringIO()
    with django_db_blocker.unblock():
        call_command("dead_letters", stdout=listing)
    lines = listing.getvalue().splitlines()
    assert any(line.startswith(garbage) and "unreadable" in line for line in lines), lines
    assert any("no_such_actor" in line for line in lines), lines


def raw_message(actor: str, args: tuple[Any, ...], redis_id: str) -> bytes:
    options = {"redis_message_id": redis_id}
    return dramatiq.Message(
        queue_name="bench", actor_name=actor, args=args, kwargs={}, options=options
    ).encode()
