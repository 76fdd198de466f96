"""Writing the job rows, always in the caller's transaction (see models.DueJob).

Lock order everywhere: the job row first, then the post row. The dispatcher takes job
rows with SKIP LOCKED, so a person's change that holds a job row simply wins that tick.
"""

from __future__ import annotations

import datetime as dt
import uuid

from apps.publishing.models import DueJob, JobKind
from tenants.db import connection


def job_lock(*, post_id: uuid.UUID, kind: str = JobKind.PUBLISH) -> DueJob | None:
    return (
        DueJob.objects.select_for_update()
        .filter(schema_name=connection.schema_name, post_id=post_id, kind=kind)
        .first()
    )


def job_set(*, post_id: uuid.UUID, kind: str, due_at: dt.datetime) -> None:
    """Create or move the job; any lease is dropped (the job is waiting again)."""
    DueJob.objects.update_or_create(
        schema_name=connection.schema_name,
        post_id=post_id,
        kind=kind,
        defaults={"due_at": due_at, "leased_until": None, "sends": 0},
    )


def job_delete(*, post_id: uuid.UUID, kind: str | None = None) -> None:
    jobs = DueJob.objects.filter(schema_name=connection.schema_name, post_id=post_id)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    jobs.delete()
