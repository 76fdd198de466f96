"""The operators' own tables, in the public schema: each agency's figures, kept fresh by a periodic
job (the figures live in the agency's schema, which a page must not visit per row), and the
append-only log of what operators did to agencies."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Agency


class AgencyStats(models.Model):
    """One agency's figures as the last refresh read them in its schema (apps.operators.stats)."""

    agency = models.OneToOneField(Agency, primary_key=True, on_delete=models.CASCADE, related_name="stats")
    members = models.PositiveIntegerField(default=0, help_text="Active users.")
    accounts = models.PositiveIntegerField(default=0, help_text="Connected TikTok accounts.")
    accounts_needing_reconnect = models.PositiveIntegerField(default=0)
    # The calendar month (UTC) the post figures are for: its first day.
    month = models.DateField(null=True, blank=True)
    posts_by_state = models.JSONField(default=dict, blank=True, help_text="This month's posts per status.")
    published_month = models.PositiveIntegerField(default=0)
    failed_month = models.PositiveIntegerField(default=0)
    storage_bytes = models.PositiveBigIntegerField(default=0, help_text="Bytes of uploaded media.")
    tokens_expiring = models.PositiveIntegerField(
        default=0, help_text="Accounts whose refresh token expires within 24 hours of the refresh."
    )
    last_activity_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "agency stats"

    def __str__(self) -> str:
        return f"Figures of agency {self.agency_id} at {self.refreshed_at:%Y-%m-%d %H:%M}"

    @property
    def posts_month(self) -> int:
        return sum(int(n) for n in self.posts_by_state.values())

    @property
    def failure_rate(self) -> float | None:
        """Failed among the posts that reached TikTok's answer this month (None: none did)."""
        done = self.published_month + self.failed_month
        return self.failed_month / done if done else None


class OperatorAuditLog(models.Model):
    """One operator action on an agency. The database refuses UPDATE and DELETE on this table.

    The agency is named, not referenced: the entry outlives the agency's purge.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    operator_email = models.EmailField(blank=True)
    action = models.CharField(max_length=64)
    agency_ref = models.BigIntegerField(help_text="The agency's id (kept after the agency is purged).")
    agency_slug = models.CharField(max_length=40)
    agency_name = models.CharField(max_length=120)
    reason = models.TextField()
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "operator audit entry"
        verbose_name_plural = "operators' audit log"
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="operator_audit_time_idx"),
            models.Index(fields=["agency_ref", "-created_at"], name="operator_audit_agency_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(action=""), name="operator_audit_action_set"),
            models.CheckConstraint(condition=~Q(reason=""), name="operator_audit_reason_set"),
        ]

    def __str__(self) -> str:
        return f"{self.action} of {self.agency_slug} by {self.operator_email or 'system'}"
