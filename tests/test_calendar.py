"""The calendar: month and week, in the person's time zone, one query for the posts however many."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, Perm, access_set
from apps.posts.models import Post, PostStatus
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
LATE_EVENING = dt.datetime(2030, 3, 14, 23, 30, tzinfo=dt.UTC)  # a Thursday


def signed_in(agency: Agency, time_zone: str = "UTC") -> Client:
    with schema_context(agency.schema_name):
        User.objects.filter(email=OWNER).update(time_zone=time_zone)
    client = client_for(agency)
    assert client.post("/login/", {"username": OWNER, "password": OWNER_PASSWORD}).status_code == 302
    return client


def member_signed_in(agency: Agency, role: str, *grants: tuple[TikTokAccount, frozenset[Perm]]) -> Client:
    """Someone of `role` holding exactly the permissions given on each account, signed in."""
    email = f"{role}@alpha.example"
    with schema_context(agency.schema_name):
        user = User.objects.create_user(email, OWNER_PASSWORD, role=role, name=role.title())
        for account, perms in grants:
            access_set(user=user, account=account, perms=perms, by=None)
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def calendar(client: Client, **params: str) -> str:
    response = client.get("/calendar/", params)
    assert response.status_code == 200
    return response.content.decode()


def days(html: str) -> dict[str, str]:
    """Each day shown → the markup of that day (up to the next day)."""
    parts = re.split(r'<time datetime="(\d{4}-\d{2}-\d{2})">', html)
    return {parts[index]: parts[index + 1] for index in range(1, len(parts), 2)}


@pytest.mark.parametrize("view", ["month", "week"])
def test_a_late_evening_utc_post_is_on_the_next_day_in_tokyo(alpha: Agency, view: str) -> None:
    with schema_context(alpha.schema_name):
        PostFactory(caption="Late evening drop", scheduled_at=LATE_EVENING)

    tokyo = days(calendar(signed_in(alpha, "Asia/Tokyo"), view=view, date="2030-03-14"))
    utc = days(calendar(signed_in(alpha, "UTC"), view=view, date="2030-03-14"))

    assert "Late evening drop" in tokyo["2030-03-15"] and "Late evening drop" not in tokyo["2030-03-14"]
    assert '<time datetime="2030-03-15T08:30:00+09:00">08:30</time>' in tokyo["2030-03-15"]
    assert "Late evening drop" in utc["2030-03-14"] and "Late evening drop" not in utc["2030-03-15"]
    assert '<time datetime="2030-03-14T23:30:00+00:00">23:30</time>' in utc["2030-03-14"]


def test_month_is_an_accessible_table_of_whole_weeks_with_navigation(alpha: Agency) -> None:
    html = calendar(signed_in(alpha), view="month", date="2030-03-14")

    assert "<h1" in html and "March 2030</h1>" in html
    assert "<table" in html and "<caption" in html and "Posts in March 2030" in html
    assert html.count('<th scope="col">') == 7 and '<abbr title="Monday">Mon</abbr>' in html
    shown = list(days(html))
    # March 2030 starts on a Friday and ends on a Sunday: Monday 25 February to Sunday 31 March.
    assert shown[0] == "2030-02-25" and shown[-1] == "2030-03-31" and len(shown) == 35
    assert 'href="/calendar/?view=month&amp;date=2030-02-01" rel="prev"' in html
    assert 'href="/calendar/?view=month&amp;date=2030-04-01" rel="next"' in html
    assert 'href="/calendar/?view=week&amp;date=2030-03-14"' in html  # the week of the day asked for


def test_week_has_a_heading_per_day_and_moves_by_seven_days(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        PostFactory(caption="Inside the week", scheduled_at=dt.datetime(2030, 3, 11, 9, tzinfo=dt.UTC))
        PostFactory(caption="The week after", scheduled_at=dt.datetime(2030, 3, 18, 9, tzinfo=dt.UTC))

    html = calendar(signed_in(alpha), view="week", date="2030-03-14")

    assert "Week of 11\u201317 March 2030" in html
    assert html.count('<h2 class="day-heading">') == 7
    assert list(days(html)) == [f"2030-03-{day}" for day in range(11, 18)]
    assert "Inside the week" in html and "The week after" not in html
    assert 'href="/calendar/?view=week&amp;date=2030-03-04" rel="prev"' in html
    assert 'href="/calendar/?view=week&amp;date=2030-03-18" rel="next"' in html


def test_posts_are_coloured_by_status(alpha: Agency) -> None:
    when = dt.datetime(2030, 3, 5, 10, tzinfo=dt.UTC)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        PostFactory(account=account, caption="Going out", scheduled_at=when)
        PostFactory(account=account, caption="Went wrong", status=PostStatus.FAILED, scheduled_at=when)
        PostFactory(
            account=account,
            caption="Went out",
            status=PostStatus.PUBLISHED,
            publish_id="p_1",
            published_at=when,
            scheduled_at=when,
        )

    cell = days(calendar(signed_in(alpha), date="2030-03-05"))["2030-03-05"]

    for status, caption in (("scheduled", "Going out"), ("failed", "Went wrong"), ("published", "Went out")):
        assert re.search(rf'class="cal-post status-{status}"[^>]*>.*?{caption}', cell, re.S), status
    # Only what may still move can be dragged.
    assert cell.count('draggable="true"') == 1


def test_a_busy_day_in_the_month_links_to_its_week(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        for hour in range(5):
            PostFactory(account=account, scheduled_at=dt.datetime(2030, 3, 5, 8 + hour, tzinfo=dt.UTC))

    cell = days(calendar(signed_in(alpha), date="2030-03-05"))["2030-03-05"]

    assert cell.count('class="cal-post') == 3
    assert 'href="?view=week&amp;date=2030-03-05">+2 more' in cell


def test_a_month_counts_each_local_day_in_sql_and_reads_only_what_it_shows(alpha: Agency) -> None:
    # Given, for someone in Paris, 4 posts on 5 March local time (the first at 23:30 UTC on the
    # 4th, 00:30 in Paris) and 40 on 12 March
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        PostFactory(
            account=account,
            caption="Just after midnight",
            scheduled_at=dt.datetime(2030, 3, 4, 23, 30, tzinfo=dt.UTC),
        )
        for hour in range(3):
            PostFactory(account=account, scheduled_at=dt.datetime(2030, 3, 5, 9 + hour, tzinfo=dt.UTC))
        for minute in range(40):
            PostFactory(account=account, scheduled_at=dt.datetime(2030, 3, 12, 9, minute, tzinfo=dt.UTC))
    client = signed_in(alpha, time_zone="Europe/Paris")

    with CaptureQueriesContext(connection) as queries:
        html = calendar(client, date="2030-03-05")

    cells = days(html)
    # Then each day shows its first three, in local time, and how many more it holds
    assert "Just after midnight" in cells["2030-03-05"] and "Just after midnight" not in cells["2030-03-04"]
    assert cells["2030-03-05"].count('class="cal-post') == 3 and "+1 more" in cells["2030-03-05"]
    assert cells["2030-03-12"].count('class="cal-post') == 3 and "+37 more" in cells["2030-03-12"]
    assert "44 posts in this month." in html
    # And one query ranks the posts within their local day, another reads only the ones shown
    sqls = [q["sql"] for q in queries.captured_queries if 'FROM "posts_post"' in q["sql"]]
    assert len([sql for sql in sqls if "ROW_NUMBER" in sql]) == 1
    (read,) = [sql for sql in sqls if "ROW_NUMBER" not in sql]
    shown = html.split('class="cal-legend"')[0].count('class="cal-post')
    assert len(set(re.findall(r"'([0-9a-f]{32})'::uuid", read))) == shown == 6


def test_another_agencys_posts_never_appear(alpha: Agency, beta: Agency) -> None:
    with schema_context(beta.schema_name):
        PostFactory(caption="Beta's secret launch", scheduled_at=LATE_EVENING)
    with schema_context(alpha.schema_name):
        PostFactory(caption="Alpha's own post", scheduled_at=LATE_EVENING)

    client = signed_in(alpha)
    for view in ("month", "week"):
        html = calendar(client, view=view, date="2030-03-14")
        assert "Alpha's own post" in html.replace("&#x27;", "'")
        assert "secret launch" not in html


def test_a_bad_date_or_view_shows_this_month(alpha: Agency) -> None:
    today = timezone.now().date()
    html = calendar(signed_in(alpha), view="year", date="not-a-date")
    assert f"{today:%B %Y}</h1>" in html


@pytest.mark.parametrize("view", ["month", "week"])
def test_query_count_does_not_grow_with_posts(alpha: Agency, view: str) -> None:
    client = signed_in(alpha, "Europe/Paris")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            calendar(client, view=view, date="2030-03-14")
        return len([q for q in captured if not q["sql"].startswith("SET search_path")])

    with schema_context(alpha.schema_name):
        PostFactory(scheduled_at=dt.datetime(2030, 3, 12, 9, tzinfo=dt.UTC))
    few = queries()
    with schema_context(alpha.schema_name):
        for hour in range(20):  # each on an account of its own
            PostFactory(scheduled_at=dt.datetime(2030, 3, 12 + hour % 4, hour, tzinfo=dt.UTC))
    many = queries()

    # The agency (by host), the session, the user, the period's posts with their accounts (the
    # month: first its days' ranking, then the posts shown), and the accounts the person may
    # draft for (whose posts they may move).
    assert few == many == (6 if view == "month" else 5)


# --- Moving a post to another day (the form behind drag and drop) ---


def move(client: Client, post: Post, day: dt.date) -> str:
    response = client.post(
        "/calendar/move/",
        {"post": str(post.pk), "date": day.isoformat(), "view": "month", "anchor": day.isoformat()},
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain[0][0] == f"/calendar/?view=month&date={day.isoformat()}"
    return response.content.decode().replace("&#x27;", "'")


def test_moving_keeps_the_local_time_of_day(alpha: Agency) -> None:
    # Given a post at 09:15 Tokyo time three days from now
    tokyo = dt.timezone(dt.timedelta(hours=9))
    start = (timezone.now().astimezone(tokyo) + dt.timedelta(days=3)).date()
    with schema_context(alpha.schema_name):
        post = PostFactory(
            caption="Moves nicely", scheduled_at=dt.datetime.combine(start, dt.time(9, 15), tzinfo=tokyo)
        )
    client = signed_in(alpha, "Asia/Tokyo")

    # When it is dropped two days later
    html = move(client, post, start + dt.timedelta(days=2))

    # Then it is there at 09:15 Tokyo time, and the page says so
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
    assert post.scheduled_at == dt.datetime.combine(
        start + dt.timedelta(days=2), dt.time(9, 15), tzinfo=tokyo
    )
    assert post.status == PostStatus.SCHEDULED and post.schedule_time_zone == "Asia/Tokyo"
    assert "Moved “Moves nicely” to" in html and "09:15 (Asia/Tokyo)" in html


def test_moving_is_refused_with_the_reason(alpha: Agency) -> None:
    soon = timezone.now() + dt.timedelta(days=2)
    with schema_context(alpha.schema_name):
        scheduled = PostFactory(caption="Not into the past", scheduled_at=soon)
        claimed = PostFactory(caption="On its way", status=PostStatus.PUBLISHING, scheduled_at=soon)
        draft = PostFactory(caption="Still a draft", status=PostStatus.DRAFT, scheduled_at=soon)
    client = signed_in(alpha)

    html = move(client, scheduled, (timezone.now() - dt.timedelta(days=2)).date())
    assert "“Not into the past” was not moved: That time has already passed." in html
    html = move(client, claimed, (soon + dt.timedelta(days=1)).date())
    assert "“On its way” was not moved: it is publishing" in html
    html = move(client, draft, (soon + dt.timedelta(days=1)).date())
    assert "“Still a draft” was not moved: it is draft" in html

    with schema_context(alpha.schema_name):
        assert {p.scheduled_at for p in Post.objects.filter(pk__in=[scheduled.pk, claimed.pk, draft.pk])} == {
            soon
        }
        assert Post.objects.get(pk=draft.pk).status == PostStatus.DRAFT


def test_another_agencys_post_cannot_be_moved(alpha: Agency, beta: Agency) -> None:
    with schema_context(beta.schema_name):
        theirs = PostFactory(scheduled_at=timezone.now() + dt.timedelta(days=2))
    response = signed_in(alpha).post(
        "/calendar/move/", {"post": str(theirs.pk), "date": "2030-03-14", "view": "month"}
    )
    assert response.status_code == 404
    assert signed_in(alpha).get("/calendar/move/").status_code == 405


def test_a_client_reviewer_is_offered_neither_new_posts_nor_dragging(alpha: Agency) -> None:
    # Given a client reviewer (view and approve, no draft) of an account with a scheduled post
    soon = timezone.now() + dt.timedelta(days=2)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        post = PostFactory(account=account, caption="Reviewed, not moved", scheduled_at=soon)
    client = member_signed_in(alpha, Role.CLIENT, (account, ROLE_DEFAULTS[Role.CLIENT]))

    # When they open the calendar on that week
    html = calendar(client, view="week", date=soon.date().isoformat())

    # Then they see the post, as a plain link, and nothing invites them to write or move posts
    assert "Reviewed, not moved" in html
    assert f'href="/posts/{post.pk}/" draggable="false">' in html
    assert 'draggable="true"' not in html and "data-post=" not in html
    assert "New post" not in html and 'href="/posts/new/"' not in html.split('<main id="main"')[1]
    assert "Drag a scheduled post" not in html and "To move a post" not in html
    assert "/calendar/move/" not in html


def test_only_posts_the_person_may_draft_for_can_be_dragged(alpha: Agency) -> None:
    # Given an editor who drafts for one account and only views another
    soon = timezone.now() + dt.timedelta(days=2)
    with schema_context(alpha.schema_name):
        theirs, watched = TikTokAccountFactory(), TikTokAccountFactory()
        mine = PostFactory(account=theirs, caption="Mine to move", scheduled_at=soon)
        seen = PostFactory(account=watched, caption="Only to look at", scheduled_at=soon)
    client = member_signed_in(
        alpha,
        Role.EDITOR,
        (theirs, frozenset({Perm.VIEW, Perm.DRAFT})),
        (watched, frozenset({Perm.VIEW})),
    )

    html = calendar(client, view="week", date=soon.date().isoformat())

    # Then their own account's post can be dragged, the other one cannot, and they may write posts
    assert f'draggable="true" data-post="{mine.pk}"' in html
    assert f'href="/posts/{seen.pk}/" draggable="false">' in html and f'data-post="{seen.pk}"' not in html
    assert "New post</a>" in html and "Drag a scheduled post to another day to move it." in html
    # (touch screens, where dragging does not work, show the other way instead: static/css/schedule.css)
    assert '<span class="touch-hint"> To move a post, open it and reschedule it.</span>' in html
    # and a forged move of the other account's post changes nothing
    response = client.post("/calendar/move/", {"post": str(seen.pk), "date": "2030-03-14", "view": "month"})
    assert response.status_code == 404
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=seen.pk).scheduled_at == soon
