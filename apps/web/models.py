"""Public-schema tables of the root site (apps.web is a shared app)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from apps.common.models import TimestampedModel


class WelcomeToken(TimestampedModel):
    """A one-time sign-in that carries a new owner from signup (root domain) to their agency.

    Only the SHA-256 of the token is stored; the token itself travels once, in the redirect.
    It is bound to one agency and its owner, expires after a couple of minutes and is spent
    by the first use (see apps.web.signup).
    """

    token_hash = models.CharField(max_length=64, unique=True)
    agency = models.ForeignKey("tenants.Agency", on_delete=models.CASCADE, related_name="+")
    # The owner's id in the agency's own schema: no foreign key can cross schemas.
    user_id = models.UUIDField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="web_welcometoken_expiry_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="web_welcometoken_expires"
            ),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(used_at__gte=F("created_at")),
                name="web_welcometoken_used_after_created",
            ),
        ]

    def __str__(self) -> str:
        return f"Welcome token for agency {self.agency_id}"
