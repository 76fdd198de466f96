"""The append-only audit log: who did what, from where, to which object."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


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
