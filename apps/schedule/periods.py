"""The calendar's periods (a month grid or a week) in a person's time zone, and posts laid out
on the local days they fall on. Pure functions: no queries, no HTML."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from django.utils import dateformat

from apps.posts.models import PostStatus, photos_label, post_title, status_label

View = Literal["month", "week"]
VIEWS: tuple[View, ...] = ("month", "week")
# A month cell lists this many posts, then links to the week for the rest.
MONTH_CELL_POSTS = 3


def zone_for(name: str) -> zoneinfo.ZoneInfo:
    """The person's zone; UTC when the stored name is unknown to this machine."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def parse_view(value: str | None) -> View:
    return "week" if value == "week" else "month"


def parse_date(value: str | None, default: dt.date) -> dt.date:
    """A YYYY-MM-DD date from the query string; `default` when missing or not a date."""
    try:
        parsed = dt.date.fromisoformat(value or "")
    except ValueError:
        return default
    # Keep a margin from the ends of the calendar, so previous/next never overflow.
    return parsed if dt.date(1900, 1, 1) <= parsed <= dt.date(9000, 12, 31) else default


def _month_start(day: dt.date, months: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())  # weeks start on Monday (ISO 8601)


@dataclass(frozen=True)
class Period:
    """What the calendar shows: `first` to `last` (included) in `zone`, around `anchor` (the day
    asked for: the month or week shown is the one that holds it)."""

    view: View
    anchor: dt.date
    first: dt.date
    last: dt.date
    previous: dt.date
    next: dt.date
    zone: zoneinfo.ZoneInfo

    @classmethod
    def around(cls, view: View, anchor: dt.date, zone: zoneinfo.ZoneInfo) -> Period:
        if view == "week":
            first = _week_start(anchor)
            return cls(
                view=view,
                anchor=anchor,
                first=first,
                last=first + dt.timedelta(days=6),
                previous=first - dt.timedelta(days=7),
                next=first + dt.timedelta(days=7),
                zone=zone,
            )
        month = _month_start(anchor)
        month_end = _month_start(anchor, 1) - dt.timedelta(days=1)
        return cls(
            view=view,
            anchor=anchor,  # kept: switching to the week shows the week of this day
            # Whole weeks: from the Monday on or before the 1st to the Sunday on or after the end.
            first=_week_start(month),
            last=_week_start(month_end) + dt.timedelta(days=6),
            previous=_month_start(anchor, -1),
            next=_month_start(anchor, 1),
            zone=zone,
        )

    def _local_midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=self.zone)

    @property
    def start(self) -> dt.datetime:
        """The first instant shown (aware)."""
        return self._local_midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        """The instant just after the last day shown (aware)."""
        return self._local_midnight(self.last + dt.timedelta(days=1))

    def in_period(self, day: dt.date) -> bool:
        if self.view == "month":
            return (day.year, day.month) == (self.anchor.year, self.anchor.month)
        return self.first <= day <= self.last


@dataclass(frozen=True, slots=True)
class CalendarPost:
    """A post as the calendar shows it, read as plain values: a busy week holds hundreds, and
    making each a Post with its account was most of the page's time."""

    pk: uuid.UUID
    account_id: uuid.UUID
    account_label: str
    caption: str
    status: str
    mode: str
    media_type: str
    photo_count: int
    scheduled_at: dt.datetime
    # How many posts its local day holds (the month's cells; None in the week).
    day_total: int | None = None

    def __str__(self) -> str:
        return post_title(self.caption)

    @property
    def photos_label(self) -> str:
        return photos_label(self.media_type, self.photo_count)

    @property
    def status_label(self) -> str:
        return status_label(self.status, self.mode)


@dataclass
class Entry:
    """A post on the calendar, at its local time."""

    post: CalendarPost
    local: dt.datetime
    # Whether the viewer may draft for the post's account (moving a post takes Perm.DRAFT).
    may_draft: bool = False

    @property
    def movable(self) -> bool:
        """Whether the viewer may drag it to another day: they may draft for its account, and it
        is scheduled and not yet claimed by a worker. (Drafts and posts waiting for approval are
        changed on their own page: moving them must not schedule them.)"""
        return self.may_draft and self.post.status == PostStatus.SCHEDULED


@dataclass(frozen=True)
class DayLabels:
    """How a day is written on the calendar (English, as the pages' `date` filter writes it)."""

    iso: str  # 2026-12-06
    weekday: str  # Sunday
    weekday_short: str  # Sun
    number: str  # 6
    long: str  # Sunday 6 December
    short: str  # 6 Dec

    @classmethod
    def of(cls, day: dt.date) -> DayLabels:
        return _day_labels(day)


@functools.lru_cache(maxsize=2048)
def _day_labels(day: dt.date) -> DayLabels:
    # One pass of Django's date formatting for all six (a month has 42 days, each written five
    # or six times: as filters they were a fifth of the page's time), once per process: the
    # words are English whoever reads them (settings.USE_I18N is off).
    return DayLabels(*dateformat.format(day, "Y-m-d|l|D|j|l j F|j M").split("|"))


@dataclass
class Day:
    date: dt.date
    in_period: bool
    is_today: bool
    is_past: bool
    entries: list[Entry] = field(default_factory=list)
    # How many posts the day holds, when `entries` are only its first few (the month view's).
    total: int | None = None

    @cached_property
    def label(self) -> DayLabels:
        return DayLabels.of(self.date)

    @property
    def shown_in_month(self) -> list[Entry]:
        return self.entries[:MONTH_CELL_POSTS]

    @property
    def more_in_month(self) -> int:
        count = len(self.entries) if self.total is None else self.total
        return max(0, count - MONTH_CELL_POSTS)


def lay_out(
    period: Period,
    posts: Iterable[CalendarPost],
    today: dt.date,
    draft_account_ids: AbstractSet[uuid.UUID] = frozenset(),
) -> list[Day]:
    """Every day of the period, each with its posts on the local day they fall on, in time order.

    `draft_account_ids`: the accounts the viewer may draft for (their posts may be moved). Posts
    that carry `day_total` (apps.schedule.selectors.posts_first_of_each_day) are only the first
    of their day, which holds that many."""
    by_day: dict[dt.date, list[Entry]] = defaultdict(list)
    totals: dict[dt.date, int] = {}
    for post in posts:
        if post.scheduled_at is None:
            continue
        local = post.scheduled_at.astimezone(period.zone)
        by_day[local.date()].append(
            Entry(post=post, local=local, may_draft=post.account_id in draft_account_ids)
        )
        if post.day_total is not None:
            totals[local.date()] = post.day_total
    days = []
    day = period.first
    while day <= period.last:
        days.append(
            Day(
                date=day,
                in_period=period.in_period(day),
                is_today=day == today,
                is_past=day < today,
                entries=by_day.get(day, []),
                total=totals.get(day),
            )
        )
        day += dt.timedelta(days=1)
    return days


def weeks_of(days: list[Day]) -> list[list[Day]]:
    return [days[index : index + 7] for index in range(0, len(days), 7)]
