"""Each agency's figures for the operators' console, read in its own schema and kept in the public
`AgencyStats` row, so that the console's list reads one public table however many agencies exist.

`agency_stats_refresh` visits one schema (a handful of aggregate queries); the scheduler sends
`operators_refresh_stats_all` every AGENCY_STATS_REFRESH_SECONDS, which sends one message per agency
(apps.operators.tasks); `manage.py refresh_agency_stats` does the same in one process.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.audit.models import AuditLog
from apps.media.models import MediaItem
from apps.operators.models import AgencyStats
from apps.posts.models import Post, PostMedia, PostStatus
from apps.users.models import User
from tenants.models import Agency

logger = logging.getLogger(__name__)

TOKENS_EXPIRING_WITHIN = dt.timedelta(hours=24)


def month_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: dt.datetime) -> dt.datetime:
    return (start + dt.timedelta(days=32)).replace(day=1)


def agency_stats_refresh(*, agency: Agency, now: dt.datetime | None = None) -> AgencyStats:
    """Read the agency's figures in its schema and store them in its public row (made if missing).

    Posts "this month" are those scheduled in the current calendar month (UTC), or, without a time,
    made in it. Storage counts every stored media file, the ones in the bin included (their bytes
    are stored until purged).
    """
    now = now or timezone.now()
    start = month_start(now)
    end = next_month(start)
    with schema_context(agency.schema_name):
        members = User.objects.filter(is_active=True).count()
        accounts = TikTokAccount.objects.aggregate(
            total=Count("pk"),
            reconnect=Count("pk", filter=Q(status=AccountStatus.NEEDS_REAUTH)),
            expiring=Count(
                "pk",
                filter=Q(refresh_expires_at__gt=now, refresh_expires_at__lte=now + TOKENS_EXPIRING_WITHIN)
                & ~Q(refresh_token=""),
            ),
        )
        by_state = dict(
            Post.objects.annotate(month_time=Coalesce("scheduled_at", "created_at"))
            .filter(month_time__gte=start, month_time__lt=end)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        # Each stored object once: a library item's, shared by the posts that reuse it, and the
        # media rows of no item (from before the library, or covers).
        storage = (MediaItem.all_objects.aggregate(total=Sum("size_bytes"))["total"] or 0) + (
            PostMedia.all_objects.filter(library_item__isnull=True).aggregate(total=Sum("size_bytes"))[
                "total"
            ]
            or 0
        )
        last_audit = AuditLog.objects.aggregate(at=Max("created_at"))["at"]
        last_login = User.objects.aggregate(at=Max("last_login"))["at"]
    last_activity = max((moment for moment in (last_audit, last_login) if moment is not None), default=None)
    stats, _ = AgencyStats.objects.update_or_create(
        agency=agency,
        defaults={
            "members": members,
            "accounts": accounts["total"],
            "accounts_needing_reconnect": accounts["reconnect"],
            "tokens_expiring": accounts["expiring"],
            "month": start.date(),
            "posts_by_state": by_state,
            "published_month": by_state.get(PostStatus.PUBLISHED, 0),
            "failed_month": by_state.get(PostStatus.FAILED, 0),
            "storage_bytes": storage,
            "last_activity_at": last_activity,
            "refreshed_at": now,
        },
    )
    return stats


def agencies_to_refresh() -> list[Agency]:
    """Every agency with a schema (the deleted ones too, until they are purged)."""
    return list(Agency.objects.exclude(schema_name="public").order_by("pk"))


def agency_stats_refresh_all(*, now: dt.datetime | None = None) -> int:
    """Refresh every agency here, one after the other; one agency's failure is logged and skipped."""
    done = 0
    for agency in agencies_to_refresh():
        try:
            agency_stats_refresh(agency=agency, now=now)
            done += 1
        except Exception:
            logger.exception("Could not refresh the figures of agency %s", agency.slug)
    return done
