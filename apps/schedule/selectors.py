"""Reads behind the dashboard and the calendar. Each one does its own select_related, so a
page's query count never depends on how many posts or accounts it shows.

Visibility: posts come through `Post.objects.visible_to(user)` and accounts through
`apps.accounts.permissions.accounts_with(user)`, the one rule per resource.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber, TruncDate

from apps.accounts.models import SECRET_FIELDS, AccountStatus, TikTokAccount, account_label
from apps.accounts.permissions import accounts_with
from apps.accounts.posting_limits import WARN_AT, account_posting_limit, posting_counts
from apps.posts.models import Post, PostStatus
from apps.schedule.periods import CalendarPost

UPCOMING_LIMIT = 10
ATTENTION_LIMIT = 20
# Failed posts stay on the dashboard this long; posts that need attention stay until someone acts.
FAILED_SHOWN_FOR = dt.timedelta(days=7)
# Approval decisions stay on their author's dashboard this long.
REVIEWS_SHOWN_FOR = dt.timedelta(days=7)
REVIEWS_LIMIT = 10
# A person must act before these post again.
RECONNECT_STATUSES = (AccountStatus.NEEDS_REAUTH, AccountStatus.REVOKED, AccountStatus.ERROR)
# On their way out: the next posts the dashboard lists.
UPCOMING_STATUSES = (
    PostStatus.PENDING_APPROVAL,
    PostStatus.SCHEDULED,
    PostStatus.PUBLISHING,
    PostStatus.PROCESSING,
)


# --- Dashboard ---


def posts_upcoming(*, user: Any, limit: int = UPCOMING_LIMIT) -> list[Post]:
    """The next posts to go out, soonest first, including those being published right now."""
    return list(
        Post.objects.visible_to(user)
        .filter(status__in=UPCOMING_STATUSES, scheduled_at__isnull=False)
        .with_account()
        .order_by("scheduled_at", "created_at")[:limit]
    )


def posts_needing_attention(*, user: Any, now: dt.datetime, limit: int = ATTENTION_LIMIT) -> list[Post]:
    """Posts a person must look at: every `needs_attention` one, those that failed in the last week,
    and those taken off the schedule because their account was disconnected (until scheduled again).

    Most recent first."""
    return list(
        Post.objects.visible_to(user)
        .filter(
            Q(status=PostStatus.NEEDS_ATTENTION)
            | Q(status=PostStatus.FAILED, updated_at__gte=now - FAILED_SHOWN_FOR)
            | Q(status=PostStatus.DRAFT, last_error_code="account_disconnected")
        )
        .with_account()
        .order_by("-updated_at")[:limit]
    )


def accounts_needing_reconnection(*, user: Any) -> list[TikTokAccount]:
    return list(
        accounts_with(user).filter(status__in=RECONNECT_STATUSES).defer(*SECRET_FIELDS).order_by("username")
    )


def accounts_near_daily_cap(*, user: Any, now: dt.datetime, warn_at: int = WARN_AT) -> list[TikTokAccount]:
    """Accounts that sent `warn_at` or more posts to TikTok in the last 24 hours, busiest first,
    each with `posts_last_24h` (see `apps.accounts.posting_limits.posting_counts`): the last day's
    accepted calls counted in one query, then only those accounts read."""
    counts = posting_counts(account_ids=accounts_with(user).values("pk"), now=now)
    near = [pk for pk, count in counts.items() if count.posts >= warn_at]
    accounts = list(accounts_with(user).filter(pk__in=near).defer(*SECRET_FIELDS))
    for account in accounts:
        account.posts_last_24h = counts[account.pk].posts  # type: ignore[attr-defined]
    return sorted(accounts, key=lambda account: (-account.posts_last_24h, account.username))  # type: ignore[attr-defined]


def accounts_stopped_by_tiktok(*, user: Any, now: dt.datetime) -> list[TikTokAccount]:
    """Connected accounts TikTok stopped from posting (banned, daily cap reached), each with
    `posting_limit` (the PostingLimit in force). The app-wide limit is shown on its own."""
    accounts = list(
        accounts_with(user)
        .defer(*SECRET_FIELDS)
        .filter(status=AccountStatus.ACTIVE, posting_recheck_at__gt=now)
        .exclude(posting_blocked_code="")
        .order_by("username")
    )
    for account in accounts:
        account.posting_limit = account_posting_limit(account, now)  # type: ignore[attr-defined]
    return accounts


def posts_reviewed_for_author(*, user: Any, now: dt.datetime, limit: int = REVIEWS_LIMIT) -> list[Post]:
    """The latest approval decisions on posts this user wrote, newest first, for a week."""
    return list(
        Post.objects.visible_to(user)
        .filter(created_by=user, reviewed_at__gte=now - REVIEWS_SHOWN_FOR)
        .with_account()
        .select_related("reviewed_by")
        .order_by("-reviewed_at")[:limit]
    )


# --- Calendar ---


_CALENDAR_COLUMNS = (
    "pk",
    "account_id",
    "account__username",
    "account__display_name",
    "account__open_id",
    "caption",
    "status",
    "mode",
    "media_type",
    "photo_count",
    "scheduled_at",
)


def _calendar_posts(posts: QuerySet[Post], totals: dict[uuid.UUID, int] | None = None) -> list[CalendarPost]:
    rows = posts.order_by("scheduled_at", "created_at").values_list(*_CALENDAR_COLUMNS)
    shown = []
    for pk, account_id, username, display_name, open_id, caption, status, mode, kind, photos, at in rows:
        shown.append(
            CalendarPost(
                pk=pk,
                account_id=account_id,
                account_label=account_label(username, display_name, open_id),
                caption=caption,
                status=status,
                mode=mode,
                media_type=kind,
                photo_count=photos,
                scheduled_at=at,
                day_total=None if totals is None else totals[pk],
            )
        )
    return shown


def posts_scheduled_between(*, user: Any, start: dt.datetime, end: dt.datetime) -> list[CalendarPost]:
    """Every post whose time falls in [start, end), in time order, in one query."""
    return _calendar_posts(
        Post.objects.visible_to(user).filter(scheduled_at__gte=start, scheduled_at__lt=end)
    )


def posts_first_of_each_day(
    *, user: Any, start: dt.datetime, end: dt.datetime, zone: zoneinfo.ZoneInfo, per_day: int
) -> list[CalendarPost]:
    """The first `per_day` posts of each local day (in `zone`) of [start, end), in time order,
    each with `day_total`, how many posts that day holds: a month's cells, counted in SQL, in two
    queries however busy the month: the days ranked over ids and times alone (sorting whole rows
    with their accounts was most of the time), then only the posts shown read."""
    local_day = TruncDate("scheduled_at", tzinfo=zone)
    ranked = (
        Post.objects.visible_to(user)
        .filter(scheduled_at__gte=start, scheduled_at__lt=end)
        .annotate(
            day_rank=Window(
                RowNumber(),
                partition_by=[local_day],
                order_by=[F("scheduled_at").asc(), F("created_at").asc()],
            ),
            day_total=Window(Count("pk"), partition_by=[local_day]),
        )
        .filter(day_rank__lte=per_day)
        .values_list("pk", "day_total")
    )
    totals = dict(ranked)
    return _calendar_posts(Post.objects.filter(pk__in=totals), totals)
