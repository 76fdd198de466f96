"""Reads behind the dashboard and the calendar. Each one does its own select_related, so a
page's query count never depends on how many posts or accounts it shows.

Visibility: posts come through `Post.objects.visible_to(user)` and accounts through
`apps.accounts.permissions.accounts_with(user)`, the one rule per resource.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, QuerySet, Window
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

# What the dashboard's lists show of a post and its account, and no more: a post has some forty
# columns and its account thirty; reading and building them all for thirty rows was a third of
# the page's time. A field missing here would be read row by row (the query-count test sees it).
_DASHBOARD_POST_FIELDS = (
    "caption",
    "status",
    "mode",
    "scheduled_at",
    "updated_at",
    "last_error_message",
    "account__username",
    "account__display_name",
    "account__open_id",
)
_REVIEW_FIELDS = (
    "review_outcome",
    "review_comment",
    "reviewed_at",
    "reviewed_by__name",
    "reviewed_by__email",
)


def _dashboard_posts(posts: QuerySet[Post], *fields: str) -> QuerySet[Post]:
    related = ["account", *(["reviewed_by"] if fields else [])]
    return posts.select_related(*related).only(*related, *_DASHBOARD_POST_FIELDS, *fields)


def posts_upcoming(*, user: Any, limit: int = UPCOMING_LIMIT) -> list[Post]:
    """The next posts to go out, soonest first, including those being published right now."""
    return list(
        _dashboard_posts(Post.objects.visible_to(user))
        .filter(status__in=UPCOMING_STATUSES, scheduled_at__isnull=False)
        .order_by("scheduled_at", "created_at")[:limit]
    )


def posts_needing_attention(*, user: Any, now: dt.datetime, limit: int = ATTENTION_LIMIT) -> list[Post]:
    """Posts a person must look at: every `needs_attention` one, those that failed in the last week,
    and those taken off the schedule because their account was disconnected (until scheduled again).

    Most recent first."""
    return list(
        _dashboard_posts(Post.objects.visible_to(user))
        .filter(
            Q(status=PostStatus.NEEDS_ATTENTION)
            | Q(status=PostStatus.FAILED, updated_at__gte=now - FAILED_SHOWN_FOR)
            | Q(status=PostStatus.DRAFT, last_error_code="account_disconnected")
        )
        .order_by("-updated_at")[:limit]
    )


@dataclass(frozen=True)
class AccountHealth:
    """The dashboard's account alerts: accounts a person must reconnect (by name); accounts that
    sent `WARN_AT` or more posts to TikTok in the last 24 hours, busiest first, each with
    `posts_last_24h`; connected accounts TikTok stopped from posting (banned, daily cap reached),
    by name, each with `posting_limit` (the PostingLimit in force). The app-wide limit is shown
    on its own."""

    reconnect: list[TikTokAccount]
    near_cap: list[TikTokAccount]
    stopped: list[TikTokAccount]

    def __bool__(self) -> bool:
        return bool(self.reconnect or self.near_cap or self.stopped)


def account_health(*, user: Any, now: dt.datetime, warn_at: int = WARN_AT) -> AccountHealth:
    """Two queries however many accounts: the last day's accepted calls counted (see
    `apps.accounts.posting_limits.posting_counts`), then every account in one of the three lists
    read at once."""
    counts = posting_counts(account_ids=accounts_with(user).values("pk"), now=now)
    near = {pk for pk, count in counts.items() if count.posts >= warn_at}
    reconnect = Q(status__in=RECONNECT_STATUSES)
    stopped = Q(status=AccountStatus.ACTIVE, posting_recheck_at__gt=now) & ~Q(posting_blocked_code="")
    accounts = list(
        accounts_with(user)
        .defer(*SECRET_FIELDS)
        .filter(reconnect | stopped | Q(pk__in=near))
        .annotate(
            to_reconnect=ExpressionWrapper(reconnect, output_field=BooleanField()),
            is_stopped=ExpressionWrapper(stopped, output_field=BooleanField()),
        )
        .order_by("username")
    )
    health = AccountHealth(
        reconnect=[account for account in accounts if account.to_reconnect],
        near_cap=[account for account in accounts if account.pk in near],
        stopped=[account for account in accounts if account.is_stopped],
    )
    for account in health.near_cap:
        account.posts_last_24h = counts[account.pk].posts  # type: ignore[attr-defined]
    health.near_cap.sort(key=lambda account: -account.posts_last_24h)  # type: ignore[attr-defined]
    for account in health.stopped:
        account.posting_limit = account_posting_limit(account, now)  # type: ignore[attr-defined]
    return health


def posts_reviewed_for_author(*, user: Any, now: dt.datetime, limit: int = REVIEWS_LIMIT) -> list[Post]:
    """The latest approval decisions on posts this user wrote, newest first, for a week."""
    return list(
        _dashboard_posts(Post.objects.visible_to(user), *_REVIEW_FIELDS)
        .filter(created_by=user, reviewed_at__gte=now - REVIEWS_SHOWN_FOR)
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
