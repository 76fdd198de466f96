"""The dispatcher: hands due jobs to workers, at most once per lease.

One query on the public job table, `FOR UPDATE SKIP LOCKED` so that several dispatchers
never take the same row, compared against the database's clock (`clock_timestamp()`, the
real time even inside a long transaction). A publish job claims its
post (scheduled → publishing) in the agency's schema in the same transaction, so a person
who cancels or reschedules either wins before the claim or is told it is too late.
Messages are sent only after the transaction commits.

One agency's state never stops another's publishing: the jobs of an agency that is not active
(suspended, deleted in its grace period) are skipped and left in place for when it is active
again; the jobs of an agency that is gone (purged) are removed; and each job is handled in a
savepoint of its own, so an error on one row (its schema dropped under it, say) is logged and
that row put off, while the rest of the batch goes out.
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

# A job whose row failed (logged) is tried again after this many seconds, not at every tick.
ROW_ERROR_DELAY = 30

# A job sent again without a worker having taken it since: its message most likely waits in a long
# queue (or was lost with Redis). Each time it is sent again, its lease doubles, up to this many
# times the lease: a queue longer than a lease is not flooded with copies of its messages (each
# of which a worker must take and drop), and a message Redis lost is still sent again soon.
MAX_LEASE_GROWTH = 8

# `known`: whether an agency has the job's schema at all (False: purged; the job is removed).
_TAKE = """
    SELECT j.id, j.schema_name, j.post_id, j.kind, j.sends, j.dispatches, j.lease_token IS NOT NULL AS taken,
        EXISTS (SELECT 1 FROM public.tenants_agency a WHERE a.schema_name = j.schema_name) AS known
    FROM public.publishing_duejob j
    WHERE j.due_at <= clock_timestamp() AND (j.leased_until IS NULL OR j.leased_until < clock_timestamp())
        AND NOT EXISTS (
            SELECT 1 FROM public.tenants_agency a WHERE a.schema_name = j.schema_name AND a.status <> 'active'
        )
    ORDER BY j.due_at
    LIMIT %s
    FOR UPDATE OF j SKIP LOCKED
"""
_DELETE = "DELETE FROM public.publishing_duejob WHERE id = %s"
_PUT_OFF = (
    "UPDATE public.publishing_duejob SET leased_until = clock_timestamp() + make_interval(secs => %s), "
    "lease_token = NULL WHERE id = %s"
)


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
        for job_id, schema, post_id, kind, sends, dispatches, taken, known in cursor.fetchall():
            if not known:
                logger.warning(
                    "Dropped the %s job of post %s: no agency has schema %s", kind, post_id, schema
                )
                cursor.execute(_DELETE, [job_id])
                continue
            if taken:
                # A worker took this job and stopped renewing its lease: it died, or stalled longer
                # than the lease (a worker that makes progress renews it; leases.py).
                logger.warning(
                    "Handing the %s job of post %s in %s to another worker: the worker on it stopped "
                    "renewing its lease",
                    kind,
                    post_id,
                    schema,
                )
            try:
                with transaction.atomic():
                    dispatch = _dispatch_one(cursor, job_id, schema, post_id, kind, sends, dispatches)
            except Exception:
                # Only this row's work was undone (its savepoint); the batch goes on.
                logger.exception("The %s job of post %s in %s failed; put off", kind, post_id, schema)
                cursor.execute(_PUT_OFF, [ROW_ERROR_DELAY, job_id])
                continue
            if dispatch is not None:
                sent.append(dispatch)
        transaction.on_commit(lambda: send_jobs(list(sent)))
    return sent


def _dispatch_one(
    cursor: Any, job_id: int, schema: str, post_id: Any, kind: str, sends: int, dispatches: int
) -> Dispatch | None:
    table = quote_ident(schema, "posts_post")
    if sends >= MAX_SENDS:
        _give_up(cursor, table, post_id)
        cursor.execute(_DELETE, [job_id])
        return None
    if kind == "publish" and not _claim(cursor, table, post_id):
        cursor.execute(_DELETE, [job_id])
        return None
    lease = settings.PUBLISH_LEASE_SECONDS if kind == "publish" else settings.POLL_LEASE_SECONDS
    cursor.execute(
        "UPDATE public.publishing_duejob "
        "SET leased_until = clock_timestamp() + make_interval(secs => %s), lease_token = NULL, "
        "dispatches = dispatches + 1 WHERE id = %s",
        [lease * min(2**dispatches, MAX_LEASE_GROWTH), job_id],
    )
    return Dispatch(schema, str(post_id), kind)


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
