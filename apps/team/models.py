"""The agency's team: invitations to join it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.common.models import SoftDeleteModel
from apps.users.models import Role


class Invitation(SoftDeleteModel):
    """An invitation to join this agency; the link's token is stored only as a hash."""

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    accounts = models.ManyToManyField("accounts.TikTokAccount", blank=True, related_name="invitations")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(role=Role.OWNER), name="team_invitation_not_owner"),
            models.CheckConstraint(
                condition=models.Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106
                name="team_invitation_token_is_sha256",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="team_invitation_not_accepted_and_revoked",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="team_invitation_expires_after_creation",
            ),
            # One open invitation per address at a time.
            models.UniqueConstraint(
                Lower("email"),
                condition=models.Q(
                    accepted_at__isnull=True, revoked_at__isnull=True, deleted_at__isnull=True
                ),
                name="team_invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
