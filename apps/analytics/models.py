"""Daily analytics per TikTok account and per video: TikTok's counts are lifetime totals, so we
snapshot them once a day and read growth from the differences."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Self

from django.db import models
from django.db.models import Q

from apps.common.models import TimestampedModel


class SnapshotQuerySet(models.QuerySet):
    """Reads shared by both snapshot kinds; each does its own select_related."""

    def visible_to(self, user: Any) -> Self:
        """Snapshots of the accounts this user may see (apps.accounts.permissions)."""
        from apps.accounts.permissions import accounts_with

        return self.filter(account__in=accounts_with(user).values("pk"))

    def for_account(self, account_id: Any) -> Self:
        return self.filter(account_id=account_id)

    def between(self, first: dt.date, last: dt.date) -> Self:
        """Snapshots taken on `first` to `last`, both included."""
        return self.filter(date__gte=first, date__lte=last)


class AccountSnapshot(TimestampedModel):
    account = models.ForeignKey("accounts.TikTokAccount", on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField()
    followers = models.PositiveBigIntegerField(default=0)
    following = models.PositiveBigIntegerField(default=0)
    likes = models.PositiveBigIntegerField(default=0)
    videos = models.PositiveBigIntegerField(default=0)
    views = models.PositiveBigIntegerField(default=0)
    comments = models.PositiveBigIntegerField(default=0)
    shares = models.PositiveBigIntegerField(default=0)
    # Derived: followers gained since the previous snapshot (negative when lost), and
    # (likes + comments + shares) / views over the account's videos, as a fraction.
    follower_growth = models.BigIntegerField(default=0)
    engagement_rate = models.DecimalField(max_digits=7, decimal_places=6, default=0)

    objects: ClassVar[SnapshotQuerySet] = SnapshotQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["account", "-date"]
        get_latest_by = "date"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "date"], name="analytics_one_snapshot_per_account_day"
            ),
            models.CheckConstraint(
                condition=Q(engagement_rate__gte=0), name="analytics_engagement_rate_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.date}"


class VideoSnapshot(TimestampedModel):
    """One video's lifetime counts on one day, as TikTok's video list reported them.

    `post` links the video to the Postline post that published it (its `published_post_id`);
    videos posted outside Postline have none."""

    account = models.ForeignKey(
        "accounts.TikTokAccount", on_delete=models.CASCADE, related_name="video_snapshots"
    )
    post = models.ForeignKey(
        "posts.Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="video_snapshots"
    )
    video_id = models.CharField(max_length=64)
    date = models.DateField()
    title = models.CharField(max_length=300, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="When the video went up on TikTok.")
    views = models.PositiveBigIntegerField(default=0)
    likes = models.PositiveBigIntegerField(default=0)
    comments = models.PositiveBigIntegerField(default=0)
    shares = models.PositiveBigIntegerField(default=0)

    objects: ClassVar[SnapshotQuerySet] = SnapshotQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["account", "-date", "-views"]
        get_latest_by = "date"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "video_id", "date"], name="analytics_one_video_snapshot_per_day"
            ),
            models.CheckConstraint(condition=~Q(video_id=""), name="analytics_video_snapshot_has_video_id"),
        ]
        indexes = [
            # The analytics page's query: an account's videos over a period.
            models.Index(fields=["account", "date"], name="analytics_video_account_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.video_id} on {self.date}"
