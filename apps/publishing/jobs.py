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
