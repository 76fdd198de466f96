"""Periodic jobs, started by `manage.py run_scheduler` (one or more processes).

Each job runs at most once per period across every scheduler process: a Redis key taken
with SET NX marks the period as done before the job's message is sent. Slices above this
floor add their jobs at start-up with `scheduler_register` (from `AppConfig.ready`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from apps.tiktok.ratelimit import redis_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyJob:
    name: str
    hour_utc: int
    send: Callable[[], None]

    def due(self, now: dt.datetime) -> bool:
        return now.hour >= self.hour_utc

    def period_key(self, now: dt.datetime) -> str:
        return f"postline:{settings.DRAMATIQ_NAMESPACE}:scheduler:{self.name}:{now.date().isoformat()}"


@dataclass(frozen=True)
class EveryJob:
    """A job sent once every `seconds` (periods counted from the epoch)."""

    name: str
    seconds: int
    send: Callable[[], None]

    def due(self, now: dt.datetime) -> bool:
        return True

    def period_key(self, now: dt.datetime) -> str:
        period = int(now.timestamp()) // max(1, self.seconds)
        return f"postline:{settings.DRAMATIQ_NAMESPACE}:scheduler:{self.name}:{period}"


_registered: list[DailyJob | EveryJob] = []


def scheduler_register(job: DailyJob | EveryJob) -> None:
    if all(existing.name != job.name for existing in _registered):
        _registered.append(job)


def _sync_stats() -> None:
    from apps.accounts.tasks import accounts_sync_all_agencies

    accounts_sync_all_agencies.send()


def daily_jobs() -> list[DailyJob | EveryJob]:
    return [DailyJob("stats-sync", settings.STATS_SYNC_HOUR_UTC, _sync_stats), *_registered]


def run_due_jobs(now: dt.datetime | None = None) -> list[str]:
    """Send every job whose time has come and that no scheduler sent this period."""
    now = now or timezone.now()
    sent = []
    for job in daily_jobs():
        if job.due(now) and redis_client().set(job.period_key(now), "1", nx=True, ex=3 * 86400):
            job.send()
            sent.append(job.name)
            logger.info("Scheduled job %s sent", job.name)
    return sent
