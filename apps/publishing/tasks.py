"""Publishing actors. Thin: they take a post id; the agency travels in the message.

Retries are not Dramatiq's: the job table (apps.publishing.models) decides when a post is
tried again, so a lost message or a killed worker is recovered by the dispatcher and a
publish can never be re-run by an automatic retry.
"""

from __future__ import annotations

import dramatiq

from apps.publishing import services
from tenants.dramatiq import SCHEMA_OPTION


# Within a worker, a publish is taken before a status check (lower number, higher priority):
# a post due now must not wait behind checks on posts that are already at TikTok.
@dramatiq.actor(queue_name="publish", max_retries=0, time_limit=60 * 60 * 1000, priority=0)
def publishing_publish(post_id: str) -> None:
    services.post_publish(post_id=post_id)


@dramatiq.actor(queue_name="poll", max_retries=0, time_limit=10 * 60 * 1000, priority=10)
def publishing_poll(post_id: str) -> None:
    services.post_poll_status(post_id=post_id)


@dramatiq.actor(queue_name="bench", max_retries=0, tenant_free=True)
def publishing_noop(counter: str) -> None:
    """Counts itself and does nothing else: the benchmark's measure of Dramatiq's own throughput."""
    publishing_noop.broker.client.incr(counter)  # type: ignore[attr-defined]


def send_job(schema_name: str, post_id: str, kind: str) -> None:
    actor = publishing_publish if kind == "publish" else publishing_poll
    message = actor.message(post_id)
    message.options[SCHEMA_OPTION] = schema_name
    actor.broker.enqueue(message)
