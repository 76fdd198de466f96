"""The public-schema job table that drives publishing.

Every post that must be published or checked has one row here, written in the same
transaction as the post's own change. The dispatcher only reads this table, so its cost
depends on what is due, not on how many agencies exist; and because the queue's truth
is in PostgreSQL (Redis only carries messages), a lost message or a killed worker is
recovered when its lease expires.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class JobKind(models.TextChoices):
    PUBLISH = "publish", "Publish"
    POLL = "poll", "Check status"


class DueJob(models.Model):
    id = models.BigAutoField(primary_key=True)
    schema_name = models.CharField(max_length=63)
    post_id = models.UUIDField()
    kind = models.CharField(max_length=8, choices=JobKind.choices)
    due_at = models.DateTimeField()
    # Set by the dispatcher when it hands the job out and renewed by the worker while it makes
    # progress; while in the future, a worker owns the job; once past, the dispatcher resends it.
    leased_until = models.DateTimeField(null=True, blank=True)
    # Which worker run holds the lease: set when a worker takes the job (jobs.job_take), cleared
    # when the dispatcher hands it out again or the job is rescheduled. Only the run holding this
    # token renews the lease, and only before it runs out.
    lease_token = models.UUIDField(null=True, blank=True)
    # Times the dispatcher sent the job since a worker last took it: a job sent again and again
    # without being taken has its message waiting in a long queue, and is sent again less often.
    dispatches = models.PositiveIntegerField(default=0)
    # How many times a worker started on the job since it was last (re)scheduled.
    sends = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["schema_name", "post_id", "kind"], name="publishing_one_job_per_kind"
            ),
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="publishing_job_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["due_at"], name="publishing_job_due_idx"),
            # The leases workers hold, renewed by their token (jobs.job_renew_all).
            models.Index(
                fields=["lease_token"],
                name="publishing_job_lease_idx",
                condition=Q(lease_token__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.schema_name}/{self.post_id} at {self.due_at:%Y-%m-%d %H:%M:%S}"
