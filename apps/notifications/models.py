"""Notifications: the outbox of events, one row per person and channel, preferences, chat webhooks.

An `Event` is written in the transaction of the change it tells of; its `Notification`s (one per
recipient and channel, unique) in the same transaction. The worker delivers email and chat
rows at least once; the unique rows and the `sending` lease keep a crash to at most one
duplicate.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Self

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from apps.accounts.permissions import accounts_with
from apps.common.fields import EncryptedTextField
from apps.common.models import AuthoredModel, TimestampedModel


class Kind(models.TextChoices):
    POST_FAILED = "post_failed", "A post failed"
    POST_NEEDS_ATTENTION = "post_needs_attention", "A post needs attention"
    POST_PUBLISHED = "post_published", "A post was published"
    APPROVAL_REQUESTED = "approval_requested", "A post waits for approval"
    POST_APPROVED = "post_approved", "Your post was approved"
    POST_REJECTED = "post_rejected", "Your post was rejected"
    ACCOUNT_NEEDS_REAUTH = "account_needs_reauth", "An account needs reconnecting"
    ACCOUNT_REVOKED = "account_revoked", "An account's access was removed"
    ACCOUNT_DAILY_CAP = "account_daily_cap", "An account reached TikTok's daily limit"
    ACCOUNT_BANNED = "account_banned", "TikTok banned an account from posting"
    INVITATION_ACCEPTED = "invitation_accepted", "Someone accepted your invitation"
    WEBHOOK_DISABLED = "webhook_disabled", "A webhook was turned off after a day of failures"
    EXPORT_FINISHED = "export_finished", "Your agency export finished"
    CLIENT_COMMENT = "client_comment", "A client commented on a post"
    COMMENT_MENTION = "comment_mention", "Someone mentioned you in a comment"
    POST_COMMENT = "post_comment", "A teammate commented on your post"
    AUDIT_EXPORT_FINISHED = "audit_export_finished", "An audit log export you asked for finished"
    DIGEST = "digest", "Daily digest"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Email"


# What people get when neither they nor their agency said otherwise: everything but "published".
OFF_BY_DEFAULT = frozenset({(Kind.POST_PUBLISHED, Channel.IN_APP), (Kind.POST_PUBLISHED, Channel.EMAIL)})
# Comments' events tell the agency's team only, never a client reviewer (apps.comments).
COMMENT_KINDS = frozenset({Kind.CLIENT_COMMENT, Kind.COMMENT_MENTION, Kind.POST_COMMENT})
# Kinds a person chooses per channel (the digest has its own settings).
CHOOSABLE_KINDS: list[str] = [kind.value for kind in Kind if kind != Kind.DIGEST]


class Event(TimestampedModel):
    """One thing that happened, as people will read it (the outbox row)."""

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What makes it this occurrence: "post_failed:<post>:<attempt>". Written twice, it is one event.
    key = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    # Where it links on the agency's site (a path; emails make it absolute).
    path = models.CharField(max_length=300, blank=True)
    account = models.ForeignKey(
        "accounts.TikTokAccount", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    post = models.ForeignKey("posts.Post", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Extra lines for long events (the digest), each {"text": ..., "path": ...}.
    lines = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Status(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Not sent (the person may no longer see it)"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def inbox(self, user: Any) -> Self:
        """The in-app notifications `user` may read now: theirs, about objects they still see."""
        from_accounts = accounts_with(user).values("pk")
        return (
            self.filter(recipient=user, channel=Channel.IN_APP)
            .filter(Q(event__account__isnull=True) | Q(event__account_id__in=from_accounts))
            .select_related("event")
            .order_by("-created_at")
        )

    def unread(self) -> Self:
        return self.filter(read_at__isnull=True)


class Notification(TimestampedModel):
    """One event for one person on one channel."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # Not sent before this (quiet hours hold email until they end).
    not_before = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "recipient", "channel"], name="notifications_once_per_person_channel"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="notifications_channel_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["recipient", "-created_at"],
                name="notifications_inbox_idx",
                condition=Q(channel="in_app"),
            ),
            models.Index(
                fields=["status", "not_before"],
                name="notifications_outgoing_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]


class Preference(TimestampedModel):
    """Whether `user` (or, with no user, everyone in the agency by default) hears of `kind` on `channel`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"],
                name="notifications_preference_once",
                nulls_distinct=False,
            ),
        ]


class PersonSettings(TimestampedModel):
    """Quiet hours and the daily digest, read in the person's own time zone."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    digest_enabled = models.BooleanField(default=False)
    digest_hour = models.PositiveSmallIntegerField(default=8)
    # The local date of the last digest written, so a day gets one.
    digest_last_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(digest_hour__lte=23), name="notifications_digest_hour_valid"),
        ]

    def quiet_until(self, now: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
        """When the quiet hours around `now` end, or None outside them."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return None
        local = now.astimezone(zone)
        t = local.time().replace(tzinfo=None)
        start, end = self.quiet_start, self.quiet_end
        inside = start <= t < end if start < end else (t >= start or t < end)
        if not inside:
            return None
        end_day = local.date() if t < end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(end_day, end, tzinfo=zone)


class WebhookStyle(models.TextChoices):
    SLACK = "slack", "Slack-compatible incoming webhook"
    SIGNED = "signed", "Signed JSON (HMAC-SHA256)"


class ChatWebhook(AuthoredModel):
    """Where the agency's chat hears of events; set up by owners and admins."""

    name = models.CharField(max_length=100)
    style = models.CharField(max_length=8, choices=WebhookStyle.choices)
    url = models.URLField(max_length=500)
    # The HMAC key of a signed webhook (ours, shown to the admin once, stored encrypted).
    secret = EncryptedTextField(blank=True, default="")
    kinds = ArrayField(models.CharField(max_length=32, choices=Kind.choices), default=list, blank=True)
    is_active = models.BooleanField(default=True)
    # Set when a delivery was given up on after a day of failures; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    # A webhook whose deliveries failed for a day is turned off (`is_active` False), and why;
    # saving it again turns it back on.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Gave up"


class ChatDelivery(TimestampedModel):
    """One event (or a test) sent to one webhook: the delivery log."""

    webhook = models.ForeignKey(ChatWebhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When an admin asked for it to be sent again: the day of tries counts from then.
    redelivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "webhook"], name="notifications_chat_once", condition=Q(event__isnull=False)
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notifications_chat_due_idx",
                condition=Q(status__in=["pending", "retrying"]),
            ),
        ]
