"""A bulk import of posts: the file someone uploaded (its cells, kept here between the steps),
how its columns map to a post's fields, and once confirmed, how the import went."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.common.models import TimestampedModel

# An import with no progress for this long is taken for stopped (its worker went away).
STALLED_AFTER = dt.timedelta(minutes=15)


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Not imported yet"
    QUEUED = "queued", "Waiting for a worker"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed"


class ImportMode(models.TextChoices):
    DRAFT = "draft", "As drafts"
    SCHEDULE = "schedule", "Scheduled (or sent for approval)"


class PostImport(TimestampedModel):
    """One file of posts, bound to the person who uploaded it (nobody else sees it)."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file_name = models.CharField(max_length=255)
    # The file's first line and the lines after it, every cell as text.
    headers = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    # Field (apps.imports.columns.FIELDS) → the index of the file's column holding it.
    mapping = models.JSONField(default=dict, blank=True)
    mapped = models.BooleanField(default=False)
    mode = models.CharField(max_length=10, choices=ImportMode.choices, default=ImportMode.DRAFT)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    # Once done: posts by status, the rows left out (number and why), the daily-cap warnings.
    counts = models.JSONField(default=dict, blank=True)
    post_ids = models.JSONField(default=list, blank=True)
    left_out = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="imports_by_user_idx")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.IMPORTING) and not self.stalled

    @property
    def stalled(self) -> bool:
        """No progress for STALLED_AFTER: its worker stopped (the posts saved so far are kept)."""
        return self.status in (ImportStatus.QUEUED, ImportStatus.IMPORTING) and (
            self.updated_at < timezone.now() - STALLED_AFTER
        )

    @property
    def percent(self) -> int:
        if not self.rows_total:
            return 0
        return min(100, round(100 * self.rows_done / self.rows_total))
