"""Reads behind the analytics page: an account's snapshots over a period, its totals, and the
numbers its charts are drawn from (SVG coordinates in the chart's own units; the template draws).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Subquery

from apps.accounts.models import TikTokAccount
from apps.analytics.models import AccountSnapshot, VideoSnapshot

PERIODS = (30, 90)
DEFAULT_PERIOD = 30
TOP_VIDEOS = 10

# Chart geometry, in SVG user units (the charts scale to their box).
LINE_WIDTH = 640
LINE_HEIGHT = 240
LINE_TOP = 24  # room for the top gridline's label
LINE_BOTTOM = 36  # room for the dates under the axis
LINE_INSET = 6  # keeps the end points' dots inside the box
BAR_WIDTH = 640
BAR_ROW = 48
BAR_LABEL = 20  # label baseline within a row
BAR_TOP = 26  # bar top within a row
BAR_THICKNESS = 14


def parse_period(value: str | None) -> int:
    try:
        days = int(value or DEFAULT_PERIOD)
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def compact(value: int) -> str:
    """128400 → "128.4k": axis labels stay short."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return str(value)


def _nice_step(raw: float) -> int:
    """The smallest of 1, 2 or 5 times 10^n that is at least `raw` (and at least 1)."""
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


@dataclass(frozen=True)
class Tick:
    value: int
    label: str
    y: float


@dataclass(frozen=True)
class Point:
    date: dt.date
    value: int
    x: float
    y: float


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    baseline: float
    points: list[Point]
    ticks: list[Tick]
    first: dt.date
    last: dt.date

    @property
    def dot_radius(self) -> float:
        """Dots on every snapshot while there is room for them; a bare line past that."""
        count = len(self.points)
        return 4.0 if count <= 16 else 3.0 if count <= 45 else 0.0

    @property
    def path(self) -> str:
        """The points as SVG writes them ("x,y " each), joined here rather than in a loop of the
        template (a year of snapshots is 365 of them, written twice)."""
        return "".join(f"{point.x},{point.y} " for point in self.points)

    @property
    def start(self) -> Point:
        return self.points[0]

    @property
    def end(self) -> Point:
        return self.points[-1]


def line_chart(series: list[tuple[dt.date, int]], first: dt.date, last: dt.date) -> LineChart | None:
    """A line over the period `first`..`last`: x by date (gaps where no snapshot was taken),
    y from "nice" gridline values around the data."""
    if not series:
        return None
    values = [value for _, value in series]
    low, high = min(values), max(values)
    step = _nice_step((high - low) / 3 if high > low else max(1, high) / 100)
    bottom = math.floor(low / step) * step
    top = max(math.ceil(high / step) * step, bottom + step)
    baseline = LINE_HEIGHT - LINE_BOTTOM
    span_days = max(1, (last - first).days)

    def x(day: dt.date) -> float:
        return round(LINE_INSET + (day - first).days / span_days * (LINE_WIDTH - 2 * LINE_INSET), 1)

    def y(value: float) -> float:
        return round(baseline - (value - bottom) / (top - bottom) * (baseline - LINE_TOP), 1)

    ticks = [Tick(value=v, label=compact(v), y=y(v)) for v in range(bottom, top + 1, step)]
    if len(ticks) > 6:  # keep the gridlines few: first, middle, last
        ticks = [ticks[0], ticks[len(ticks) // 2], ticks[-1]]
    return LineChart(
        width=LINE_WIDTH,
        height=LINE_HEIGHT,
        baseline=baseline,
        points=[Point(date=day, value=value, x=x(day), y=y(value)) for day, value in series],
        ticks=ticks,
        first=first,
        last=last,
    )


@dataclass(frozen=True)
class Bar:
    video: VideoSnapshot
    value: int
    length: float
    y: float

    @property
    def label_y(self) -> float:
        return self.y + BAR_LABEL

    @property
    def bar_y(self) -> float:
        return self.y + BAR_TOP


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    thickness: int
    bars: list[Bar]


def bar_chart(videos: list[VideoSnapshot], metric: str) -> BarChart:
    """One horizontal bar per video, longest for the highest value, in the videos' order."""
    values = [int(getattr(video, metric)) for video in videos]
    most = max(values, default=0) or 1
    bars = [
        Bar(
            video=video,
            value=value,
            # A visible sliver for anything above zero.
            length=round(max(value / most * BAR_WIDTH, 2 if value else 0), 1),
            y=index * BAR_ROW,
        )
        for index, (video, value) in enumerate(zip(videos, values, strict=True))
    ]
    return BarChart(width=BAR_WIDTH, height=max(1, len(bars)) * BAR_ROW, thickness=BAR_THICKNESS, bars=bars)


@dataclass(frozen=True)
class AccountAnalytics:
    account: TikTokAccount
    days: int
    first: dt.date
    last: dt.date
    snapshots: list[AccountSnapshot]  # oldest first
    videos: list[VideoSnapshot]  # the latest counts, most viewed first
    followers_chart: LineChart | None
    views_chart: BarChart
    likes_chart: BarChart

    @property
    def has_trend(self) -> bool:
        """Two snapshots at least: one alone (an account's first day) shows no growth or chart."""
        return len(self.snapshots) >= 2

    @property
    def latest(self) -> AccountSnapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    @property
    def earliest(self) -> AccountSnapshot | None:
        return self.snapshots[0] if self.snapshots else None

    @property
    def follower_growth(self) -> int:
        """Followers gained over the period (the first snapshot's own growth when it is the only one)."""
        if not self.latest or not self.earliest:
            return 0
        if len(self.snapshots) == 1:
            return self.latest.follower_growth
        return self.latest.followers - self.earliest.followers

    @property
    def views_gained(self) -> int:
        if not self.latest or not self.earliest or len(self.snapshots) == 1:
            return 0
        return self.latest.views - self.earliest.views

    @property
    def engagement_percent(self) -> Decimal:
        return (self.latest.engagement_rate * 100) if self.latest else Decimal(0)

    @property
    def videos_as_of(self) -> dt.date | None:
        return self.videos[0].date if self.videos else None


def account_analytics(
    *, user: Any, account: TikTokAccount, days: int, today: dt.date, using: str = DEFAULT_DB_ALIAS
) -> AccountAnalytics:
    """The account's numbers for the `days` ending `today`, in two queries on the database
    `using` (a replica: tenants.replicas)."""
    first = today - dt.timedelta(days=days - 1)
    snapshots = list(
        AccountSnapshot.objects.using(using)
        .visible_to(user)
        .for_account(account.pk)
        .between(first, today)
        .order_by("date")
    )
    # The videos as the period's latest video snapshot saw them, most viewed first.
    videos = VideoSnapshot.objects.using(using).visible_to(user).for_account(account.pk)
    latest_day = videos.between(first, today).order_by("-date").values("date")[:1]
    top = list(videos.filter(date=Subquery(latest_day)).order_by("-views", "-likes", "video_id")[:TOP_VIDEOS])
    return AccountAnalytics(
        account=account,
        days=days,
        first=first,
        last=today,
        snapshots=snapshots,
        videos=top,
        followers_chart=line_chart([(s.date, s.followers) for s in snapshots], first, today),
        views_chart=bar_chart(top, "views"),
        likes_chart=bar_chart(top, "likes"),
    )
