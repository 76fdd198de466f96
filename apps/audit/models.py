"""The append-only audit log: who did what, from where, to which object."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.common.models import TimestampedModel
from apps.exports.models import ExportStatus


class AuditLog(models.Model):
    """One recorded action. The database refuses UPDATE, DELETE and TRUNCATE on this table.

    It has no `updated_at` (nothing may change a row) and no soft delete (nothing may
    remove one); actors are users, who are only ever deactivated, never deleted.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for actions the system took on its own.",
    )
    actor_email = models.EmailField(blank=True, help_text="The actor's email at the time, kept for reading.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    account_id = models.UUIDField(
        null=True, blank=True, help_text="The TikTok account the object belongs to, for filtering."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            # The page's keyset order (newest first, then by id: apps.audit.selectors.AUDIT_ORDER)
            # after each filter, so that a page deep in the log is read like the first.
            models.Index(fields=["actor", "-created_at", "-id"], name="audit_by_actor_idx"),
            models.Index(fields=["object_type", "object_id", "-created_at"], name="audit_by_object_idx"),
            models.Index(fields=["action", "-created_at", "-id"], name="audit_by_action_idx"),
            models.Index(fields=["-created_at", "-id"], name="audit_by_time_idx"),
            models.Index(fields=["account_id", "-created_at", "-id"], name="audit_by_account_idx"),
            # Who wrote or changed a post (apps.posts.selectors: four eyes on approvals), asked
            # for every post of the approvals queue.
            models.Index(
                fields=["object_id", "actor"],
                name="audit_post_authors_idx",
                condition=models.Q(object_type="posts.post", action__in=["post.created", "post.edited"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(action=""), name="audit_action_set"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_email or 'system'} at {self.created_at:%Y-%m-%d %H:%M}"


class AuditExport(TimestampedModel):
    """A large CSV export of the audit log an owner or admin asked for, built by a worker in the
    agency's storage (apps.audit.exports); smaller ones stream straight from the page."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The filters as apps.audit.exports.filters_json writes them, and what they say in words.
    filters = models.JSONField(default=dict, blank=True)
    described = models.CharField(max_length=300, blank=True, default="")
    # The log as it was when asked for: entries up to this time, the request's own entry left out.
    up_to = models.DateTimeField()
    request_entry_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_done = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=300, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Audit log export of {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def in_progress(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.BUILDING)
