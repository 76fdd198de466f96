"""Client TikTok accounts an agency has connected, and who may do what with each."""

from __future__ import annotations

from datetime import datetime

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.common.fields import EncryptedTextField
from apps.common.models import SoftDeleteModel
from apps.tiktok.scopes import ANALYTICS_SCOPES, missing_analytics_scopes


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    NEEDS_REAUTH = "needs_reauth", "Needs reconnecting"
    REVOKED = "revoked", "Revoked"
    ERROR = "error", "Error"


class TokenStatus(models.TextChoices):
    VALID = "valid", "Valid"
    EXPIRED = "expired", "Access token expired (refreshable)"
    REFRESH_EXPIRED = "refresh_expired", "Refresh token expired"
    MISSING = "missing", "No token"


# Columns that pages never show: a list that joins accounts leaves them out (each is decrypted on
# load, which costs more than the rest of the row).
SECRET_FIELDS = ("access_token", "refresh_token")


def without_secrets(accounts: QuerySet[TikTokAccount]) -> QuerySet[TikTokAccount]:
    """`accounts` read without their tokens (neither fetched nor decrypted), each knowing whether
    it holds any (`holds_tokens`, for `token_status`): for pages that list accounts."""
    holds = ~Q(access_token="") | ~Q(refresh_token="")
    return accounts.defer(*SECRET_FIELDS).annotate(
        holds_tokens=ExpressionWrapper(holds, output_field=BooleanField())
    )


def account_label(username: str, display_name: str, open_id: str) -> str:
    """How people know an account: @username, else its display name, else TikTok's id for it."""
    if username:
        return f"@{username}"
    return display_name or open_id


class TikTokAccount(SoftDeleteModel):
    open_id = models.CharField(max_length=128)
    username = models.CharField(max_length=64, blank=True)
    display_name = models.CharField(max_length=128, blank=True)
    avatar_url = models.URLField(max_length=1024, blank=True)
    client_label = models.CharField(
        "client", max_length=128, blank=True, help_text="The agency's client this account belongs to."
    )
    status = models.CharField(max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True)
    granted_scopes = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(blank=True, default="")
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    requires_approval = models.BooleanField(
        default=False, help_text="Posts drafted by editors wait for approval before they are scheduled."
    )
    follower_count = models.PositiveBigIntegerField(null=True, blank=True)
    following_count = models.PositiveBigIntegerField(null=True, blank=True)
    likes_count = models.PositiveBigIntegerField(null=True, blank=True)
    video_count = models.PositiveBigIntegerField(null=True, blank=True)
    stats_synced_at = models.DateTimeField(null=True, blank=True)
    # TikTok stopped this creator from posting (a ban, its daily cap): its posts make no call to
    # TikTok until `posting_recheck_at`, when the next one asks again (apps/accounts/posting_limits.py).
    posting_blocked_code = models.CharField(max_length=64, blank=True)
    posting_blocked_since = models.DateTimeField(null=True, blank=True)
    posting_recheck_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "TikTok account"
        ordering = ["username", "display_name"]
        permissions = [
            ("draft_post", "Can draft posts for this account"),
            ("publish_post", "Can schedule and publish without approval"),
            ("approve_post", "Can approve posts for this account"),
            ("manage_connection", "Can connect, reconnect and disconnect this account"),
        ]
        constraints = [
            # Unique over deleted rows too: reconnecting a removed account restores it.
            models.UniqueConstraint(fields=["open_id"], name="accounts_tiktokaccount_open_id_unique"),
            models.CheckConstraint(
                condition=~models.Q(open_id=""), name="accounts_tiktokaccount_open_id_set"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AccountStatus.values),
                name="accounts_tiktokaccount_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="accounts_status_idx")]

    def __str__(self) -> str:
        return account_label(self.username, self.display_name, self.open_id)

    @property
    def missing_analytics(self) -> list[tuple[str, str]]:
        """The analytics scopes this account did not grant, each with what it would show."""
        return [(scope, ANALYTICS_SCOPES[scope]) for scope in missing_analytics_scopes(self.granted_scopes)]

    @property
    def collects_stats(self) -> bool:
        """Daily snapshots need the counts (user.info.stats) and the videos (video.list)."""
        return {"user.info.stats", "video.list"} <= set(self.granted_scopes)

    def token_status(self, now: datetime | None = None) -> TokenStatus:
        """What the stored tokens allow, without ever showing them (nor decrypting them, when the
        account was read `without_secrets`)."""
        now = now or timezone.now()
        holds_tokens = getattr(self, "holds_tokens", None)
        if holds_tokens is None:
            holds_tokens = bool(self.refresh_token) or bool(self.access_token)
        if not holds_tokens:
            return TokenStatus.MISSING
        if self.refresh_expires_at is not None and self.refresh_expires_at <= now:
            return TokenStatus.REFRESH_EXPIRED
        if self.access_expires_at is not None and self.access_expires_at <= now:
            return TokenStatus.EXPIRED
        return TokenStatus.VALID


class TikTokAccountUserObjectPermission(UserObjectPermissionBase):
    """Guardian's per-user permissions on an account, with a real foreign key."""

    content_object = models.ForeignKey(TikTokAccount, on_delete=models.CASCADE)


class TikTokAccountGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(TikTokAccount, on_delete=models.CASCADE)
