"""The dashboard, the calendar (month and week, drag to move) and analytics, in a real browser
under the strict CSP, at desktop and phone width."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus
from apps.analytics.models import VideoSnapshot
from apps.posts.models import Post, PostStatus
from apps.users.models import User
from tests.browser.conftest import PHONE, Stack, sign_in, snap
from tests.factories import AccountSnapshotFactory, PostFactory, TikTokAccountFactory

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def fits_the_phone(page: Any) -> bool:
    """Nothing wider than a 375 px screen (no sideways scrolling)."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 860})
    return bool(width <= PHONE["width"])


def seed(agency: Any, django_db_blocker: Any) -> dict[str, Any]:
    """Posts, accounts and snapshots, committed in the agency's schema."""
    today = timezone.now().astimezone(PARIS).date()
    # Wednesday of next week, 10:00 in Paris: far enough ahead, with the Thursday in the same week.
    wednesday = today + dt.timedelta(days=7 - today.weekday() + 2)
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        User.objects.filter(email="owner@committed.example").update(time_zone="Europe/Paris")
        suffix = uuid.uuid4().hex[:8]
        luna = TikTokAccountFactory(username="luna.bakes", open_id=f"luna-{suffix}")
        theo = TikTokAccountFactory(username="theo.workshop", open_id=f"theo-{suffix}")
        TikTokAccountFactory(
            username="harbor.coffee",
            open_id=f"harbor-{suffix}",
            status=AccountStatus.NEEDS_REAUTH,
            status_reason="TikTok refused to renew the authorisation. Reconnect the account.",
        )
        launch = PostFactory(
            account=luna,
            caption="Sourdough launch day",
            scheduled_at=dt.datetime.combine(wednesday, dt.time(10, 0), tzinfo=PARIS),
            schedule_time_zone="Europe/Paris",
        )
        PostFactory(
            account=theo,
            caption="Walnut stool reveal",
            scheduled_at=dt.datetime.combine(wednesday, dt.time(18, 30), tzinfo=PARIS),
            status=PostStatus.PENDING_APPROVAL,
        )
        PostFactory(
            account=theo,
            caption="Dovetails by hand",
            status=PostStatus.FAILED,
            last_error_message="TikTok flagged this post as possible spam. Change the caption and try again.",
            scheduled_at=timezone.now() - dt.timedelta(hours=3),
        )
        for offset in range(-6, 12, 3):
            PostFactory(
                account=luna,
                caption=f"Crumb shot, take {offset + 7}",
                scheduled_at=dt.datetime.combine(
                    today + dt.timedelta(days=offset), dt.time(8, 15), tzinfo=PARIS
                ),
                **(
                    {
                        "status": PostStatus.PUBLISHED,
                        "publish_id": f"p_{offset}",
                        "published_at": timezone.now(),
                    }
                    if offset < 0
                    else {}
                ),
            )
        for days_ago in range(29, -1, -1):
            AccountSnapshotFactory(
                account=luna,
                date=timezone.now().date() - dt.timedelta(days=days_ago),
                followers=120_000 + (29 - days_ago) * 290 + (days_ago % 4) * 60,
                follower_growth=290,
                views=400_000 + (29 - days_ago) * 2_000,
                engagement_rate="0.0812",
            )
        titles = [
            ("Shaping a bâtard in 30 seconds #sourdough", 240_100, 18_200),
            ("Crumb shot", 121_700, 9_800),
            ("Starter feeding routine", 60_300, 4_150),
            ("Scoring patterns for beginners", 33_900, 2_800),
        ]
        for index, (title, views, likes) in enumerate(titles):
            VideoSnapshot.objects.create(
                account=luna,
                video_id=f"730000000000000{index:04d}",
                date=timezone.now().date(),
                title=title,
                views=views,
                likes=likes,
            )
    connection.set_schema_to_public()
    return {"launch": launch, "wednesday": wednesday}


def test_dashboard_calendar_and_analytics_in_the_browser(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    data = seed(agency, django_db_blocker)
    launch: Post = data["launch"]
    wednesday: dt.date = data["wednesday"]

    # The dashboard: next posts, what needs attention, account health
    sign_in(page, stack, agency)
    assert page.get_by_role("heading", name="Next posts").is_visible()
    assert page.get_by_role("link", name="Sourdough launch day").is_visible()
    assert page.get_by_text("possible spam").is_visible()
    assert page.get_by_text("Accounts to reconnect").is_visible()
    assert page.get_by_text(f"{wednesday:%a} {wednesday.day} {wednesday:%b}, 10:00").is_visible()
    assert fits_the_phone(page)
    snap(page, "dashboard")

    # The month: a table, posts on their days, coloured by status
    page.goto(stack.url(agency, f"/calendar/?view=month&date={wednesday.isoformat()}"))
    month = page.get_by_role("table")
    assert month.is_visible()
    entry = page.locator("a.cal-post", has_text="Sourdough launch day")
    assert entry.get_attribute("class") == "cal-post status-scheduled"
    assert page.locator("a.cal-post.status-pending_approval", has_text="Walnut stool reveal").is_visible()
    assert fits_the_phone(page)
    snap(page, "calendar-month")

    # The week: a heading per day
    page.get_by_role("link", name="Week", exact=True).click()
    page.wait_for_load_state()
    assert page.locator("h2.day-heading").count() == 7
    assert page.get_by_role(
        "heading", name=re.compile(rf"Wednesday {wednesday.day} {wednesday:%b}")
    ).is_visible()
    assert fits_the_phone(page)
    snap(page, "calendar-week")

    # Dragging the post onto Thursday moves it there, at the same time of day
    with page.expect_navigation():
        page.locator(f'[data-post="{launch.pk}"]').drag_to(
            page.locator(f'[data-drop-date="{(wednesday + dt.timedelta(days=1)).isoformat()}"]')
        )
    assert page.get_by_text("Moved “Sourdough launch day” to Thursday").is_visible()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        moved = Post.objects.get(pk=launch.pk).scheduled_at
    connection.set_schema_to_public()
    assert moved == dt.datetime.combine(wednesday + dt.timedelta(days=1), dt.time(10, 0), tzinfo=PARIS)

    # Analytics: totals, the follower line, the videos' bars
    page.goto(stack.url(agency, "/analytics/"))
    assert page.get_by_role("img", name="Followers of @luna.bakes, last 30 days").is_visible()
    page.get_by_label("Period").select_option("90")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert page.get_by_role("img", name="Followers of @luna.bakes, last 90 days").is_visible()
    assert page.get_by_role("img", name="Views per video").is_visible()
    assert page.get_by_role("img", name="Likes per video").is_visible()
    assert page.locator(".total dd").first.inner_text() == "128,410"
    page.get_by_text("Videos as a table").click()
    assert page.get_by_role("cell", name="240,100").is_visible()
    assert fits_the_phone(page)
    snap(page, "analytics")
    assert page.console_errors == []

    # A calendar entry opens the post
    page.goto(stack.url(agency, f"/calendar/?view=week&date={wednesday.isoformat()}"))
    page.locator("a.cal-post", has_text="Sourdough launch day").click()
    page.wait_for_load_state()
    assert page.url == stack.url(agency, f"/posts/{launch.pk}/")
