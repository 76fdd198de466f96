"""Writing the job rows, always in the caller's transaction (see models.DueJob).

Lock order everywhere: the job row first, then the post row. The dispatcher takes job
rows with SKIP LOCKED, so a person's change that holds a job row simply wins that tick.
"""

from __future__ import annotations

import datetime as dt
import uuid

from apps.common.expressions import db_in
from apps.publishing.models import DueJob, JobKind
from tenants.db import connection


def job_lock(*, post_id: uuid.UUID, kind: str = JobKind.PUBLISH) -> DueJob | None:
    return (
        DueJob.objects.select_for_update()
        .filter(schema_name=connection.schema_name, post_id=post_id, kind=kind)
        .first()
    )


def job_set(
    *, post_id: uuid.UUID, kind: str, due_at: dt.datetime | None = None, due_in: float | None = None
) -> None:
    """Create or move the job; any lease is dropped (the job is waiting again).

    `due_at` is a time a person chose; `due_in` is seconds from now on the database's clock
    (backoffs, retries: never a process's own clock, which may be off)."""
    if (due_at is None) == (due_in is None):
        raise ValueError("Give exactly one of due_at and due_in.")
    when = due_at if due_at is not None else db_in(due_in or 0.0)
    DueJob.objects.update_or_create(
        schema_name=connection.schema_name,
        post_id=post_id,
        kind=kind,
        defaults={"due_at": when, "leased_until": None, "sends": 0},
    )


def job_delete(*, post_id: uuid.UUID, kind: str | None = None) -> None:
    jobs = DueJob.objects.filter(schema_name=connection.schema_name, post_id=post_id)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    jobs.delete()


_LEASE = (
    "UPDATE public.publishing_duejob SET leased_until = clock_timestamp() + make_interval(secs => %s){extra} "
    "WHERE schema_name = %s AND post_id = %s AND kind = %s AND leased_until IS NOT NULL"
)


def job_take(*, post_id: uuid.UUID | str, kind: str, lease_seconds: float) -> bool:
    """A worker starts on a dispatched job: its lease is renewed (on the database's clock) and
    the start counted (`sends`: a job started this many times without finishing goes to a person).

    False when the job is not dispatched: the message is early, replayed or forged (the post is
    waiting for its time or a backoff), and its run must change nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            _LEASE.format(extra=", sends = sends + 1"),
            [lease_seconds, connection.schema_name, str(post_id), kind],
        )
        return cursor.rowcount == 1


def job_renew(*, post_id: uuid.UUID | str, kind: str, lease_seconds: float) -> None:
    """The worker is still making progress on the job: keep it from being handed to another."""
    with connection.cursor() as cursor:
        cursor.execute(_LEASE.format(extra=""), [lease_seconds, connection.schema_name, str(post_id), kind])
