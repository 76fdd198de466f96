"""List and requeue Dramatiq messages that ended in a dead-letter queue.

Each line shows the message id Dramatiq logs, its queue, actor, arguments and agency; a message
that cannot be read is shown by its Redis id, its size and first bytes, and is never requeued."""

from __future__ import annotations

from typing import Any

import dramatiq
from django.core.management.base import BaseCommand, CommandError, CommandParser
from dramatiq import Message
from dramatiq.errors import DecodeError

from config.tasks import TASK_MODULES


class Command(BaseCommand):
    help = "List dead-lettered messages, or requeue them (--requeue ID ... or --requeue-all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requeue", nargs="*", default=[], metavar="MESSAGE_ID")
        parser.add_argument("--requeue-all", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        for module in TASK_MODULES:  # declare every actor, so every queue is known
            __import__(module)
        broker: Any = dramatiq.get_broker()
        client = broker.client
        wanted = set(options["requeue"])
        found = 0
        requeued = 0
        for queue in sorted(broker.get_declared_queues()):
            if queue.endswith(".DQ"):
                continue
            dead = f"{broker.namespace}:{queue}.XQ"
            for redis_id, raw in client.hgetall(f"{dead}.msgs").items():
                found += 1
                try:
                    message = Message.decode(raw)
                except DecodeError:
                    # Bytes that are not a message (forged, corrupted): listed, never requeued.
                    rid = redis_id.decode(errors="replace")
                    self.stdout.write(f"{rid}  {queue}  unreadable ({len(raw)} bytes: {raw[:40]!r})")
                    continue
                mid = message.message_id  # the id Dramatiq logs; the Redis key is internal
                self.stdout.write(
                    f"{mid}  {queue}  {message.actor_name}{tuple(message.args)}  "
                    f"agency={message.options.get('tenant_schema', '-')}"
                )
                if options["requeue_all"] or mid in wanted:
                    client.zrem(dead, redis_id)
                    client.hdel(f"{dead}.msgs", redis_id)
                    broker.enqueue(message.copy(options={**message.options, "retries": 0}))
                    requeued += 1
                    wanted.discard(mid)
        if wanted:
            raise CommandError(f"No dead-lettered message with id {', '.join(sorted(wanted))}.")
        self.stdout.write(self.style.SUCCESS(f"{found} dead-lettered message(s); {requeued} requeued."))
