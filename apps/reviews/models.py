"""What an agency shows its clients without an account: review links and shared calendars, and
the append-only record of every decision a client made (the evidence of their consent).

A client is the agency's label on its TikTok accounts (`TikTokAccount.client_label`): the
accounts sharing a label are that client's.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.common.models import AuthoredModel


class LinkKind(models.TextChoices):
    REVIEW = "review", "Review link"
    CALENDAR = "calendar", "Shared calendar"


class ClientLinkQuerySet(models.QuerySet["ClientLink"]):
    def usable(self) -> ClientLinkQuerySet:
        """Links that still open: not revoked, not expired."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ClientLink(AuthoredModel):
    """A link sent to a client. Only a hash of its token is kept (the token is shown once, when it
    is made); `prefix`, the token's first characters, finds the row without it."""

    kind = models.CharField(max_length=8, choices=LinkKind.choices)
    client_label = models.CharField(max_length=128)
    recipient = models.CharField(max_length=200, blank=True, help_text="Who it was sent to, for the list.")
    prefix = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A review link covers exactly these posts; a shared calendar covers the client's accounts.
    posts = models.ManyToManyField("posts.Post", blank=True, related_name="+")

    objects = ClientLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=LinkKind.values), name="reviews_link_kind_valid"),
            models.CheckConstraint(condition=~Q(client_label=""), name="reviews_link_client_set"),
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106
                name="reviews_link_hash_hex",
            ),
        ]
        indexes = [models.Index(fields=["client_label", "-created_at"], name="reviews_links_by_client_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.client_label}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state_label(self) -> str:
        if self.revoked_at is not None:
            return "Revoked"
        return "Expired" if self.expires_at <= timezone.now() else "Active"


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Asked for changes"


class ConsentRecord(models.Model):
    """One decision of a client on a post: who, when, from where, and exactly what they saw
    (`content_hash`, apps.posts.selectors.post_content_hash, and the fields and checksums it
    hashes). The database refuses UPDATE, DELETE and TRUNCATE on this table."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    client_label = models.CharField(max_length=128)
    post = models.ForeignKey("posts.Post", on_delete=models.PROTECT, related_name="+")
    link = models.ForeignKey(ClientLink, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # A client reviewer with an account decides as themselves; through a link, by the name they typed.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewer_name = models.CharField(max_length=200)
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    content = models.JSONField(
        default=dict, help_text="What was reviewed: every TikTok field, the files' sha256."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=Decision.values), name="reviews_consent_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(decision=Decision.APPROVED) | ~Q(comment=""),
                name="reviews_consent_refusal_says_why",
            ),
            models.CheckConstraint(
                condition=Q(content_hash__regex=r"^[0-9a-f]{64}$"), name="reviews_consent_hash_hex"
            ),
        ]
        indexes = [
            models.Index(fields=["client_label", "created_at"], name="reviews_consent_by_client_idx"),
            models.Index(fields=["post", "-created_at"], name="reviews_consent_by_post_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer_name} at {self.created_at:%Y-%m-%d %H:%M}"
