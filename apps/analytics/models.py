"""Daily analytics per TikTok account: TikTok's counts are lifetime totals, so we snapshot them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.common.models import TimestampedModel


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
