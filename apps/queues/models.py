"""Posting queues: each TikTok account's weekly time slots, kept in the account's own time zone.

A slot is a weekday and a local time ("Tuesdays at 18:00, Europe/Paris"): across a change of the
clocks its UTC instant moves and its local time stays. A slot is taken at an instant when a post
of the account that is going out (not a draft, not cancelled) is scheduled at that instant."""

from __future__ import annotations

from django.db import models

from apps.accounts.models import TikTokAccount
from apps.common.models import AuthoredModel
from apps.users.models import validate_time_zone

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class AccountQueue(AuthoredModel):
    """An account's queue settings: the time zone its slots are read in."""

    account = models.OneToOneField(TikTokAccount, on_delete=models.CASCADE, related_name="queue")
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"Queue of {self.account} ({self.time_zone})"


class QueueSlot(AuthoredModel):
    account = models.ForeignKey(TikTokAccount, on_delete=models.CASCADE, related_name="queue_slots")
    weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS)
    local_time = models.TimeField()

    class Meta:
        ordering = ["weekday", "local_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "weekday", "local_time"], name="queues_slot_unique_per_account"
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__gte=0, weekday__lte=6), name="queues_slot_weekday_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.local_time:%H:%M}"
