"""A client's report: what its accounts did over a period, from the daily snapshots.

A client is the accounts sharing a `client_label`. TikTok's counts are lifetime totals, so what
an account gained over a period is its last snapshot in the period minus its first; a client's
figure is the sum over the accounts the reader may see (apps.accounts.permissions).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Q
from django.http import Http404

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import accounts_with
from apps.analytics.models import AccountSnapshot, VideoSnapshot
from apps.posts.models import Post, PostStatus

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP_POSTS = 5
METRICS = ("views", "likes", "comments", "shares")


def clients_for(user: Any) -> list[str]:
    """The clients (labels) of the accounts `user` may see, by name."""
    labels = accounts_with(user).exclude(client_label="").values_list("client_label", flat=True)
    return sorted(set(labels), key=str.casefold)


def client_accounts(user: Any, client: str) -> list[TikTokAccount]:
    """The client's accounts that `user` may see; 404 when there are none (no such client, or
    none of it for them)."""
    accounts = list(accounts_with(user).filter(client_label=client)) if client else []
    if not accounts:
        raise Http404("No such client.")
    return accounts


@dataclass(frozen=True)
class AccountLine:
    account: TikTokAccount
    followers_start: int
    followers_end: int
    gained: dict[str, int]  # views, likes, comments, shares over the period
    posts_published: int
    has_snapshots: bool

    @property
    def follower_growth(self) -> int:
        return self.followers_end - self.followers_start


@dataclass(frozen=True)
class TopPost:
    title: str
    account: TikTokAccount
    post_id: Any  # the Postline post that published it, or None
    views: int
    likes: int
    comments: int
    shares: int


@dataclass(frozen=True)
class ClientReport:
    client: str
    first: dt.date
    last: dt.date
    lines: list[AccountLine]
    top_posts: list[TopPost]

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def posts_published(self) -> int:
        return sum(line.posts_published for line in self.lines)

    @property
    def followers_start(self) -> int:
        return sum(line.followers_start for line in self.lines)

    @property
    def followers_end(self) -> int:
        return sum(line.followers_end for line in self.lines)

    @property
    def follower_growth(self) -> int:
        return self.followers_end - self.followers_start

    def gained(self, metric: str) -> int:
        return sum(line.gained[metric] for line in self.lines)

    @property
    def views(self) -> int:
        return self.gained("views")

    @property
    def likes(self) -> int:
        return self.gained("likes")

    @property
    def comments(self) -> int:
        return self.gained("comments")

    @property
    def shares(self) -> int:
        return self.gained("shares")

    @property
    def has_snapshots(self) -> bool:
        return any(line.has_snapshots for line in self.lines)

    def summary(self) -> list[tuple[str, int]]:
        """The headline figures, in the order the page, CSV and PDF show them."""
        return [
            ("Posts published", self.posts_published),
            ("Views", self.views),
            ("Likes", self.likes),
            ("Comments", self.comments),
            ("Shares", self.shares),
            ("Follower growth", self.follower_growth),
            ("Followers at the end", self.followers_end),
        ]


def client_report(
    *,
    user: Any,
    client: str,
    first: dt.date,
    last: dt.date,
    time_zone: str = "UTC",
    using: str = DEFAULT_DB_ALIAS,
) -> ClientReport:
    """The client's figures for `first`..`last` (both included, days in `time_zone`), over the
    accounts `user` may see: 404 for a client they may see none of. Four queries; the figures'
    on the database `using` (a replica: tenants.replicas)."""
    accounts = client_accounts(user, client)
    ids = [account.pk for account in accounts]
    snapshots: dict[Any, list[AccountSnapshot]] = {}
    in_period = AccountSnapshot.objects.using(using).filter(account_id__in=ids).between(first, last)
    for snapshot in in_period.order_by("date"):
        snapshots.setdefault(snapshot.account_id, []).append(snapshot)
    zone = zoneinfo.ZoneInfo(time_zone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    published: dict[Any, int] = {}
    for account_id in (
        Post.objects.using(using)
        .filter(
            account_id__in=ids, status=PostStatus.PUBLISHED, published_at__gte=start, published_at__lt=end
        )
        .values_list("account_id", flat=True)
    ):
        published[account_id] = published.get(account_id, 0) + 1

    lines = []
    for account in accounts:
        taken = snapshots.get(account.pk, [])
        first_snap, last_snap = (taken[0], taken[-1]) if taken else (None, None)
        lines.append(
            AccountLine(
                account=account,
                followers_start=first_snap.followers if first_snap else 0,
                followers_end=last_snap.followers if last_snap else 0,
                gained={
                    metric: (getattr(last_snap, metric) - getattr(first_snap, metric)) if taken else 0
                    for metric in METRICS
                },
                posts_published=published.get(account.pk, 0),
                has_snapshots=bool(taken),
            )
        )
    return ClientReport(
        client=client, first=first, last=last, lines=lines, top_posts=_top_posts(accounts, first, last, using)
    )


def _top_posts(accounts: list[TikTokAccount], first: dt.date, last: dt.date, using: str) -> list[TopPost]:
    """The most viewed videos, as each account's latest video snapshot in the period saw them."""
    by_id = {account.pk: account for account in accounts}
    latest = (
        VideoSnapshot.objects.using(using)
        .filter(account_id__in=by_id)
        .between(first, last)
        .values("account_id")
        .annotate(day=Max("date"))
    )
    days = Q()
    for row in latest:
        days |= Q(account_id=row["account_id"], date=row["day"])
    if not days:
        return []
    videos = VideoSnapshot.objects.using(using).filter(days).order_by("-views", "-likes", "video_id")
    videos = videos[:TOP_POSTS]
    return [
        TopPost(
            title=video.title or f"Video {video.video_id}",
            account=by_id[video.account_id],
            post_id=video.post_id,
            views=video.views,
            likes=video.likes,
            comments=video.comments,
            shares=video.shares,
        )
        for video in videos
    ]
