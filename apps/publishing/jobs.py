"""Writing the job rows, always in the caller's transaction (see models.DueJob).

Lock order everywhere: the job row first, then the post row. The dispatcher takes job
rows with SKIP LOCKED, so a person's change that holds a job row simply wins that tick.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

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
        defaults={"due_at": when, "leased_until": None, "lease_token": None, "sends": 0, "dispatches": 0},
    )


def job_held(*, post_id: uuid.UUID | str, kind: str) -> bool:
    """Whether a worker run holds the job's lease right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM public.publishing_duejob WHERE schema_name = %s AND post_id = %s AND kind = %s "
            "AND lease_token IS NOT NULL AND leased_until >= clock_timestamp()",
            [connection.schema_name, str(post_id), kind],
        )
        return cursor.fetchone() is not None


def job_delete(*, post_id: uuid.UUID, kind: str | None = None) -> None:
    jobs = DueJob.objects.filter(schema_name=connection.schema_name, post_id=post_id)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    jobs.delete()


@dataclass(frozen=True)
class Lease:
    """A job a worker run took: only the run holding `token` renews it (see leases.py)."""

    schema_name: str
    post_id: str
    kind: str
    seconds: float
    token: uuid.UUID
    # How many times a worker has started on the job since it was last (re)scheduled, this one included.
    start: int


# A worker takes a job the dispatcher handed out (leased, `leased_until` set) unless another run
# holds it: its token is set and its lease still running.
_TAKE = (
    "UPDATE public.publishing_duejob SET leased_until = clock_timestamp() + make_interval(secs => %s), "
    "sends = sends + 1, dispatches = 0, lease_token = %s "
    "WHERE schema_name = %s AND post_id = %s AND kind = %s AND leased_until IS NOT NULL "
    "AND (lease_token IS NULL OR leased_until < clock_timestamp()) "
    "RETURNING sends"
)
_RENEW = (
    "UPDATE public.publishing_duejob SET leased_until = clock_timestamp() + make_interval(secs => %s) "
    "WHERE schema_name = %s AND post_id = %s AND kind = %s AND lease_token = %s "
    "AND leased_until >= clock_timestamp()"
)


def job_take(*, post_id: uuid.UUID | str, kind: str, lease_seconds: float) -> Lease | None:
    """A worker starts on a dispatched job: its lease is renewed (on the database's clock), the
    start counted (`sends`: a job started this many times without finishing goes to a person), and
    the lease made this run's own.

    None when the job is not dispatched: the message is early, replayed or forged (the post is
    waiting for its time or a backoff), and its run must change nothing; or when another run holds
    the job's lease."""
    token = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, [lease_seconds, token, connection.schema_name, str(post_id), kind])
        row = cursor.fetchone()
    if row is None:
        return None
    return Lease(connection.schema_name, str(post_id), kind, lease_seconds, token, int(row[0]))


# Every lease a worker process holds, renewed in one statement (leases.LeaseKeeper). A job row
# another transaction has locked (its own run settling it, say) is skipped, not waited for: one
# busy row must not hold back the renewal of every other lease.
_RENEW_ALL = (
    "UPDATE public.publishing_duejob j "
    "SET leased_until = clock_timestamp() + make_interval(secs => held.seconds) "
    "FROM unnest(%s::uuid[], %s::float8[]) AS held(token, seconds) "
    "WHERE j.lease_token = held.token AND j.leased_until >= clock_timestamp() AND j.id IN ("
    "SELECT f.id FROM public.publishing_duejob f WHERE f.lease_token = ANY(%s::uuid[]) "
    "FOR UPDATE SKIP LOCKED) "
    "RETURNING j.lease_token"
)
_STILL_HELD = (
    "SELECT lease_token FROM public.publishing_duejob "
    "WHERE lease_token = ANY(%s::uuid[]) AND leased_until >= clock_timestamp()"
)


def job_renew_all(leases: list[Lease]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """`job_renew` for several leases at once (tokens are unique: they name the job). Returns the
    tokens of the leases renewed, and of those still held but not renewed this time (their rows
    were busy: try again soon); any other lease is not its run's any more."""
    if not leases:
        return set(), set()
    tokens = [lease.token for lease in leases]
    with connection.cursor() as cursor:
        cursor.execute(_RENEW_ALL, [tokens, [float(lease.seconds) for lease in leases], tokens])
        renewed = {row[0] for row in cursor.fetchall()}
        if len(renewed) == len(leases):
            return renewed, set()
        cursor.execute(_STILL_HELD, [[t for t in tokens if t not in renewed]])
        return renewed, {row[0] for row in cursor.fetchall()}


def job_renew(lease: Lease) -> bool:
    """The run holding `lease` is still making progress: keep the job from being handed to another.
    False (and nothing renewed) once the lease is not this run's any more: it ran out, the dispatcher
    handed the job out again, or the job was rescheduled or removed.

    The statement names the agency's schema itself (the job table is public), so any connection
    may run it, whatever its search path."""
    with connection.cursor() as cursor:
        cursor.execute(_RENEW, [lease.seconds, lease.schema_name, lease.post_id, lease.kind, lease.token])
        return cursor.rowcount == 1
