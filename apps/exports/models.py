"""An agency's own export: everything of the agency in one archive its owners download."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.common.models import TimestampedModel


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    BUILDING = "building", "Being built"
    READY = "ready", "Ready to download"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class AgencyExport(TimestampedModel):
    """One export an owner asked for; a worker builds its archive in the agency's storage."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    # Progress: steps done of all (one per kind of record, one per media file), and the current one.
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True, default="")
    # The archive in the agency's storage ("" until built, and again once expired).
    file_name = models.CharField(max_length=300, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Export of {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def in_progress(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.BUILDING)

    @property
    def downloadable(self) -> bool:
        return (
            self.status == ExportStatus.READY
            and bool(self.file_name)
            and self.expires_at is not None
            and self.expires_at > timezone.now()
        )

    @property
    def percent(self) -> int:
        if not self.steps_total:
            return 0
        return min(100, round(100 * self.steps_done / self.steps_total))
