"""The dispatcher: hands due jobs to workers, at most once per lease.

One query on the public job table, `FOR UPDATE SKIP LOCKED` so that several dispatchers
never take the same row, compared against the database's clock (`clock_timestamp()`, the
real time even inside a long transaction). A publish job claims its
post (scheduled → publishing) in the agency's schema in the same transaction, so a person
who cancels or reschedules either wins before the claim or is told it is too late.
Messages are sent only after the transaction commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.common.sql import quote_ident
from tenants.db import connection

logger = logging.getLogger(__name__)

# A job started this many times by a worker without finishing is handed to a person. Workers
# count their starts (jobs.job_take): a message merely waiting in a long queue, sent again when
# its lease ran out, is not counted against the post.
MAX_SENDS = 8
# Jobs leased per transaction. Small batches send the first messages sooner when many posts
# fall due at once, and hold the claimed posts' row locks (which a person's cancel waits on)
# only briefly; the scheduler takes the next batch at once when a batch was full.
BATCH = 100

_TAKE = """
    SELECT id, schema_name, post_id, kind, sends FROM public.publishing_duejob
    WHERE due_at <= clock_timestamp() AND (leased_until IS NULL OR leased_until < clock_timestamp())
    ORDER BY due_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class Dispatch:
    schema_name: str
    post_id: str
    kind: str


def dispatch_due(*, limit: int = BATCH) -> list[Dispatch]:
    """Lease every due job (up to `limit`), claim publish jobs' posts, send after commit."""
    connection.set_schema_to_public()
    sent: list[Dispatch] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_TAKE, [limit])
        for job_id, schema, post_id, kind, sends in cursor.fetchall():
            table = quote_ident(schema, "posts_post")
            if sends >= MAX_SENDS:
                _give_up(cursor, table, post_id)
                cursor.execute("DELETE FROM public.publishing_duejob WHERE id = %s", [job_id])
                continue
            if kind == "publish" and not _claim(cursor, table, post_id):
                cursor.execute("DELETE FROM public.publishing_duejob WHERE id = %s", [job_id])
                continue
            cursor.execute(
                "UPDATE public.publishing_duejob "
                "SET leased_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE id = %s",
                [
                    settings.PUBLISH_LEASE_SECONDS if kind == "publish" else settings.POLL_LEASE_SECONDS,
                    job_id,
                ],
            )
            sent.append(Dispatch(schema, str(post_id), kind))
        transaction.on_commit(lambda: send_jobs(list(sent)))
    return sent


def send_jobs(dispatches: list[Dispatch]) -> None:
    from apps.publishing.tasks import send_job

    for d in dispatches:
        send_job(d.schema_name, d.post_id, d.kind)


def _claim(cursor: Any, table: str, post_id: str) -> bool:
    """scheduled → publishing, if still scheduled and due; True also when already claimed
    (a lease that expired: the worker's own checks make re-running safe)."""
    cursor.execute(
        f"UPDATE {table} SET status = 'publishing', claimed_at = clock_timestamp(), "  # noqa: S608
        "publish_attempts = publish_attempts + 1, updated_at = clock_timestamp() "
        "WHERE id = %s AND status = 'scheduled' AND deleted_at IS NULL AND scheduled_at <= clock_timestamp() "
        "RETURNING id",
        [post_id],
    )
    if cursor.fetchone() is not None:
        return True
    cursor.execute(f"SELECT status FROM {table} WHERE id = %s AND deleted_at IS NULL", [post_id])  # noqa: S608
    row = cursor.fetchone()
    return row is not None and row[0] == "publishing"


def _give_up(cursor: Any, table: str, post_id: str) -> None:
    cursor.execute(
        f"UPDATE {table} SET status = 'needs_attention', last_error_code = 'worker_gave_up', "  # noqa: S608
        "last_error_message = %s, updated_at = clock_timestamp() "
        "WHERE id = %s AND status IN ('publishing', 'processing')",
        [
            "Publishing was interrupted too many times. Check the account on TikTok, then mark the post "
            "published or retry it.",
            post_id,
        ],
    )
    logger.error("Gave up on post %s in %s", post_id, table)
