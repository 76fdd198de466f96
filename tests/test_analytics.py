"""Analytics: per-video snapshots from TikTok's video list, and the page's charts and totals."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.services import account_sync_stats
from apps.analytics.models import AccountSnapshot, VideoSnapshot
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import PostStatus
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import AccountSnapshotFactory, PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

CREATOR = "fake-open-public-001"  # @luna.bakes: 128,400 followers, three videos
FIRST_VIDEO = (
    "7300000000000001000"  # "Shaping a bâtard in 30 seconds #sourdough": 240,100 views, 18,200 likes
)


def connected_account(tiktok: FakeTikTok) -> TikTokAccount:
    tokens = tiktok.issue_tokens(CREATOR)
    return TikTokAccountFactory(
        open_id=CREATOR,
        username="luna.bakes",
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def signed_in(agency: Agency) -> Client:
    client = client_for(agency)
    client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    return client


def analytics(client: Client, **params: str) -> str:
    response = client.get("/analytics/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_sync_stores_each_video_linked_to_the_post_that_published_it(
    in_alpha: Agency, tiktok: FakeTikTok
) -> None:
    # Given a connected creator, one of whose videos Postline published
    account = connected_account(tiktok)
    ours = PostFactory(
        account=account,
        status=PostStatus.PUBLISHED,
        publish_id="v_pub_1",
        published_post_id=FIRST_VIDEO,
        published_at=timezone.now(),
    )

    # When today's stats are taken (twice: the daily job may run again)
    account_sync_stats(account=account)
    snapshot = account_sync_stats(account=account)

    # Then each video has one row for today with TikTok's counts, linked to our post where it is ours
    videos = {v.video_id: v for v in VideoSnapshot.objects.filter(account=account)}
    assert len(videos) == 3 and {v.date for v in videos.values()} == {timezone.now().date()}
    first = videos[FIRST_VIDEO]
    assert (first.views, first.likes, first.comments, first.shares) == (240_100, 18_200, 412, 950)
    assert first.title == "Shaping a bâtard in 30 seconds #sourdough"
    assert first.posted_at == dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    assert first.post_id == ours.pk
    assert [v.post_id for k, v in videos.items() if k != FIRST_VIDEO] == [None, None]
    # And the account's snapshot adds up the same videos
    assert snapshot.views == sum(v.views for v in videos.values()) == 422_100
    assert AccountSnapshot.objects.filter(account=account).count() == 1


def test_page_shows_follower_growth_and_each_videos_views_and_likes(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    # Given ten days of earlier snapshots (127,400 followers, then 100 more each day), and today's sync
    today = timezone.now().date()
    with schema_context(alpha.schema_name):
        account = connected_account(tiktok)
        for days_ago in range(10, 0, -1):
            AccountSnapshotFactory(
                account=account,
                date=today - dt.timedelta(days=days_ago),
                followers=128_400 - days_ago * 100,
                follower_growth=100,
                views=400_000,
            )
        ours = PostFactory(
            account=account,
            status=PostStatus.PUBLISHED,
            publish_id="v_pub_1",
            published_post_id=FIRST_VIDEO,
            published_at=timezone.now(),
        )
        account_sync_stats(account=account)

    # When the owner opens the analytics page
    html = analytics(signed_in(alpha))

    # Then the totals show today's followers and the growth over the period
    assert re.search(r"<dt>Followers</dt><dd>128,400</dd>", html)
    assert re.search(r"<dt>Growth over 30 days</dt><dd class=\"up\">\+1,000</dd>", html)
    assert "+22,100 in the period" in html  # views: 400,000 ten days ago, 422,100 today
    # And the follower line has one point per snapshot, rising to the right
    line = re.search(r'<polyline class="line" points="([^"]+)"', html)
    assert line is not None
    points = [tuple(map(float, pair.split(","))) for pair in line.group(1).split()]
    assert len(points) == 11
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert [y for _, y in points] == sorted((y for _, y in points), reverse=True)
    assert '<title id="followers-title">Followers of @luna.bakes, last 30 days</title>' in html
    assert "From 127,400 followers on" in html and "to 128,400 on" in html
    # And each video's views and likes are bars, longest for the most viewed, with a table behind them
    assert "Shaping a bâtard in 30 seconds" in html and "240,100" in html and "18,200" in html
    views_chart = html[html.index('id="views-chart-title"') : html.index('id="likes-chart-title"')]
    widths = [
        float(w)
        for w in re.findall(r'<rect class="bar views" x="0" y="[\d.]+" width="([\d.]+)"', views_chart)
    ]
    assert len(widths) == 3 and widths[0] == 640 and widths == sorted(widths, reverse=True)
    assert (
        "<summary>Followers as a table</summary>" in html and "<summary>Videos as a table</summary>" in html
    )
    # And the video Postline published links to its post
    assert f'<a href="/posts/{ours.pk}/">Shaping a bâtard in 30 seconds #sourdough</a>' in html


def test_the_period_limits_the_snapshots(alpha: Agency) -> None:
    today = timezone.now().date()
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        AccountSnapshotFactory(account=account, date=today - dt.timedelta(days=60), followers=500)
        AccountSnapshotFactory(account=account, date=today, followers=800)
    client = signed_in(alpha)

    month = analytics(client, account=str(account.pk), days="30")
    quarter = analytics(client, account=str(account.pk), days="90")

    # One snapshot in the last 30 days: no trend to draw, and no green "0"
    assert 'Growth over 30 days</dt><dd class="muted">Not enough data yet</dd>' in month
    assert 'Growth over 90 days</dt><dd class="up">+300</dd>' in quarter
    assert '<option value="90" selected>' in quarter


def test_empty_states_say_what_happens_next(alpha: Agency) -> None:
    client = signed_in(alpha)
    assert "No TikTok account is connected yet." in analytics(client)

    with schema_context(alpha.schema_name):
        TikTokAccountFactory(username="brand.new")
    assert "No stats for @brand.new in the last 30 days yet." in analytics(client)


def test_on_its_first_day_an_account_has_not_enough_data_for_growth_or_a_chart(alpha: Agency) -> None:
    today = timezone.now().date()
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="day.one")
        AccountSnapshotFactory(account=account, date=today, followers=1200, follower_growth=0)
    client = signed_in(alpha)

    page = analytics(client, account=str(account.pk))

    assert "Not enough data yet: there is one daily snapshot in this period" in page
    assert 'Growth over 30 days</dt><dd class="muted">Not enough data yet</dd>' in page
    assert 'class="line-chart"' not in page and 'class="dot"' not in page
    assert "<dd>1,200</dd>" in page  # the followers count it does have

    # With the day before's snapshot too, the chart and the growth are drawn
    with schema_context(alpha.schema_name):
        AccountSnapshotFactory(account=account, date=today - dt.timedelta(days=1), followers=1150)
    page = analytics(client, account=str(account.pk))
    assert "Not enough data yet" not in page and 'class="line-chart"' in page
    assert 'Growth over 30 days</dt><dd class="up">+50</dd>' in page


def test_another_agencys_account_is_not_found(alpha: Agency, beta: Agency) -> None:
    with schema_context(beta.schema_name):
        theirs = TikTokAccountFactory()
        AccountSnapshotFactory(account=theirs)
    client = signed_in(alpha)

    assert client.get("/analytics/", {"account": str(theirs.pk)}).status_code == 404
    assert client.get("/analytics/", {"account": "not-a-uuid"}).status_code == 404


def test_query_count_does_not_grow_with_snapshots_videos_or_accounts(alpha: Agency) -> None:
    today = timezone.now().date()
    client = signed_in(alpha)

    def add(days: int, videos: int) -> TikTokAccount:
        with schema_context(alpha.schema_name):
            account = TikTokAccountFactory(username=f"creator.{days}.{videos}")
            for day in range(days):
                AccountSnapshotFactory(account=account, date=today - dt.timedelta(days=day))
                for index in range(videos):
                    VideoSnapshot.objects.create(
                        account=account,
                        video_id=f"73000000000000{index:05d}",
                        date=today - dt.timedelta(days=day),
                        views=1000 * index,
                        likes=10 * index,
                    )
        return account

    def queries(account: TikTokAccount) -> int:
        with CaptureQueriesContext(connection) as captured:
            analytics(client, account=str(account.pk), days="90")
        return len([q for q in captured if not q["sql"].startswith("SET search_path")])

    few = queries(add(days=1, videos=1))
    many = queries(add(days=40, videos=15))

    # The agency (by host), the session, the user, the accounts, the snapshots, the videos.
    assert few == many == 6


def test_the_agency_admin_lists_video_snapshots_in_constant_queries(alpha: Agency) -> None:
    client = signed_in(alpha)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/admin/analytics/videosnapshot/")
            assert response.status_code == 200
        return len(captured)

    def add(count: int) -> None:
        with schema_context(alpha.schema_name):
            for _ in range(count):
                account = TikTokAccountFactory()
                post = PostFactory(account=account)
                VideoSnapshot.objects.create(
                    account=account, post=post, video_id=uuid.uuid4().hex, date=timezone.now().date()
                )

    add(1)
    few = queries()
    add(5)
    assert queries() == few
