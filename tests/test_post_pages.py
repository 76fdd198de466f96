"""The posts list and the post's page: attempt history, live status, and the actions on a post."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostStatus, PublishAttempt
from apps.posts.services import PostStateError, post_schedule
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.models import DueJob
from apps.publishing.services import post_poll_status, post_publish
from tenants.models import Agency
from tests.conftest import client_for
from tests.factories import PostFactory, TikTokAccountFactory, ready_post
from tests.test_composer import attr, by_id, field_error, find, has_id, html, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(alpha: Agency) -> Client:
    from tests.conftest import OWNER_PASSWORD

    client = client_for(alpha)
    assert (
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )
    return client


def htmx_get(client: Client, url: str, **headers: str) -> Any:
    return client.get(
        url, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://alpha.localhost{url}", **headers
    )


def status_section(response: Any) -> Any:
    return by_id(html(response), "post-status")


def messages_on(response: Any) -> str:
    return text(by_id(html(response), "messages"))


# --- The post's page ---


def test_the_post_page_shows_the_schedule_in_both_time_zones_and_the_attempt_history(
    alpha: Agency, owner: Client
) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(
            status=PostStatus.FAILED,
            scheduled_at=dt.datetime(2026, 3, 14, 17, 30, tzinfo=dt.UTC),
            schedule_time_zone="America/New_York",
            last_error_code="spam_risk_too_many_posts",
            last_error_message="This account has reached TikTok's daily posting limit. Try again tomorrow.",
        )
        started = timezone.now() - dt.timedelta(minutes=3)
        PublishAttempt.objects.create(
            post=post,
            attempt_number=1,
            kind=AttemptKind.CREATOR_INFO,
            outcome=AttemptOutcome.OK,
            http_status=200,
            log_id="20261122AAAA",
            started_at=started,
            finished_at=started + dt.timedelta(seconds=1),
        )
        PublishAttempt.objects.create(
            post=post,
            attempt_number=1,
            kind=AttemptKind.INIT,
            outcome=AttemptOutcome.FINAL,
            http_status=403,
            error_code="spam_risk_too_many_posts",
            error_message="The daily post cap for this user is reached.",
            log_id="20261122BBBB",
            started_at=started + dt.timedelta(seconds=2),
            finished_at=started + dt.timedelta(seconds=3),
        )

    response = owner.get(f"/posts/{post.pk}/")

    assert response.status_code == 200
    page = html(response)
    when = text(find(page, "dl")[0])
    assert "Sat 14 Mar 2026, 13:30:00 (America/New_York)" in when  # the post's own zone
    assert "Sat 14 Mar 2026, 17:30:00 in your time zone (UTC)" in when  # the viewer's
    rows = [[text(cell) for cell in find(row, "td")] for row in find(find(page, "tbody")[0], "tr")]
    assert [row[1:6] for row in rows] == [
        ["Creator info", "Succeeded", "200", "—", "20261122AAAA"],
        [
            "Init",
            "Failed This account has reached TikTok's daily posting limit. Try again tomorrow.",
            "403",
            "spam_risk_too_many_posts",
            "20261122BBBB",
        ],
    ]
    assert "daily posting limit" in text(by_id(page, "last-error"))
    assert text(by_id(page, "post-status-badge")) == "Failed"
    assert has_id(page, "id_published_post_id") is False  # only for posts needing attention
    assert find(page, "form", action=f"/posts/{post.pk}/retry/")


def test_the_status_polls_while_the_post_goes_out_and_stops_once_published(
    alpha: Agency, owner: Client, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post due now, claimed by the dispatcher
    with schema_context(alpha.schema_name):
        draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
        post = post_schedule(post=draft, scheduled_at=timezone.now(), time_zone="Europe/Paris", by=None)
    url = f"/posts/{post.pk}/"
    assert attr(status_section(htmx_get(owner, url)), "hx-trigger") == "every 2s"  # due within the minute
    dispatch_due()
    connection.set_schema_to_public()

    # While it is publishing, the status fragment polls every 2 s
    response = htmx_get(owner, url)
    assert response.status_code == 200 and "HX-Request" in response["Vary"]
    assert "<html" not in response.content.decode()  # a fragment, not the page
    section = status_section(response)
    assert attr(section, "hx-trigger") == "every 2s" and attr(section, "hx-get") == url
    assert text(by_id(section, "post-status-badge")) == "Publishing"

    # Once uploaded, TikTok processes it, and the page says so
    with schema_context(alpha.schema_name):
        post_publish(post_id=str(post.pk))
    section = status_section(htmx_get(owner, url))
    assert text(by_id(section, "post-status-badge")) == "Processing at TikTok"
    assert "TikTok is processing your video; this can take a few minutes." in text(section)
    assert attr(section, "hx-trigger") == "every 2s"

    # When TikTok has published it and made it public, polling stops
    with schema_context(alpha.schema_name):
        for _ in range(30):
            post_poll_status(post_id=str(post.pk))
            post = Post.objects.get(pk=post.pk)
            if post.published_post_id:
                break
            import time

            time.sleep(0.2)
        assert post.status == PostStatus.PUBLISHED and post.published_post_id
    response = htmx_get(owner, url)
    section = status_section(response)
    assert text(by_id(section, "post-status-badge")) == "Published"
    assert attr(section, "hx-trigger") is None and attr(section, "hx-get") is None
    assert f"video {post.published_post_id}" in text(section)
    attempts = by_id(html(response), "attempts")  # lower on the page: swapped out of band
    assert attr(attempts, "hx-swap-oob") == "true"
    rows = find(find(attempts, "tbody")[0], "tr")
    assert [text(find(row, "td")[1]) for row in rows][:2] == ["Creator info", "Init"]

    # A history restore gets the whole page, not the fragment
    page = htmx_get(owner, url, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in page.content.decode()


def test_a_published_post_still_waiting_for_its_public_id_keeps_polling(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(status=PostStatus.PUBLISHED, publish_id="v_pub_1", published_at=timezone.now())

    section = status_section(htmx_get(owner, f"/posts/{post.pk}/"))

    assert attr(section, "hx-trigger") == "every 2s"
    assert "its link appears once TikTok's review makes it public" in text(section)


def test_a_post_scheduled_for_later_does_not_poll(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(scheduled_at=timezone.now() + dt.timedelta(days=2))

    section = status_section(htmx_get(owner, f"/posts/{post.pk}/"))

    assert attr(section, "hx-trigger") is None


# --- Actions ---


def test_cancel_through_the_page(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(scheduled_at=timezone.now() + dt.timedelta(hours=3))
        post = post_schedule(post=post, scheduled_at=post.scheduled_at, time_zone="UTC", by=None)
        assert DueJob.objects.filter(post_id=post.pk).exists()
    assert owner.get(f"/posts/{post.pk}/cancel/").status_code == 405

    response = owner.post(f"/posts/{post.pk}/cancel/", follow=True)

    assert response.redirect_chain == [(f"/posts/{post.pk}/", 302)]
    assert messages_on(response) == "Cancelled. Nothing will be sent to TikTok."
    assert text(by_id(html(response), "post-status-badge")) == "Cancelled"
    with schema_context(alpha.schema_name):
        assert not DueJob.objects.filter(post_id=post.pk).exists()

    again = owner.post(f"/posts/{post.pk}/cancel/", follow=True)
    assert messages_on(again) == "This post is cancelled and can no longer be cancelled."


def test_retry_a_failed_post_through_the_page(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(
            status=PostStatus.FAILED, last_error_message="TikTok could not read the video file."
        )

    response = owner.post(f"/posts/{post.pk}/retry/", follow=True)

    assert messages_on(response) == "Publishing again now. This page shows how it goes."
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.status == PostStatus.SCHEDULED and post.last_error_message == ""
        assert DueJob.objects.get(post_id=post.pk).due_at <= timezone.now()


def test_mark_published_through_the_page(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(
            status=PostStatus.NEEDS_ATTENTION,
            last_error_message="We asked TikTok to create this post but never learned whether it did.",
        )
    page = html(owner.get(f"/posts/{post.pk}/"))
    assert find(page, "form", action=f"/posts/{post.pk}/mark_published/") == []
    assert find(page, "form", action=f"/posts/{post.pk}/mark-published/")
    assert find(page, "form", action=f"/posts/{post.pk}/retry/")

    refused = owner.post(f"/posts/{post.pk}/mark-published/", {"published_post_id": "12345"}, follow=True)
    assert messages_on(refused) == "A TikTok post id is 19 digits, as in the post's link."

    response = owner.post(
        f"/posts/{post.pk}/mark-published/", {"published_post_id": " 7300000000000009999 "}, follow=True
    )

    assert messages_on(response) == "Marked as published."
    assert text(by_id(html(response), "post-status-badge")) == "Published"
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.status == PostStatus.PUBLISHED and post.published_post_id == "7300000000000009999"


def test_reschedule_through_the_page(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(scheduled_at=timezone.now() + dt.timedelta(hours=3), schedule_time_zone="UTC")

    past = owner.post(
        f"/posts/{post.pk}/reschedule/",
        {"scheduled_date": "2021-05-01", "scheduled_time": "10:00", "time_zone": "Europe/Paris"},
    )
    assert past.status_code == 200
    page = html(past)
    assert field_error(page, "field-reschedule", "id_scheduled_date") == (
        "That time has already passed. Choose a time in the future."
    )
    assert attr(by_id(page, "id_scheduled_date"), "value") == "2021-05-01"

    later = (timezone.now() + dt.timedelta(days=1)).astimezone(dt.UTC)
    response = owner.post(
        f"/posts/{post.pk}/reschedule/",
        {"scheduled_date": later.date().isoformat(), "scheduled_time": "08:15", "time_zone": "Europe/Paris"},
        follow=True,
    )

    assert messages_on(response) == "Rescheduled."
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.schedule_time_zone == "Europe/Paris"
        assert post.scheduled_at.astimezone(dt.UTC).hour in (6, 7)  # 08:15 in Paris, summer or winter


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (PostStatus.DRAFT, "This post is draft: open it to schedule it."),
        (PostStatus.FAILED, "This post is failed and can no longer be rescheduled."),
    ],
)
def test_reschedule_refuses_a_post_that_is_not_scheduled(
    alpha: Agency, owner: Client, status: str, said: str
) -> None:
    # A draft is scheduled from the composer (which checks the video and TikTok's rules), not here
    with schema_context(alpha.schema_name):
        post = PostFactory(status=status, scheduled_at=None, schedule_time_zone="")
    later = (timezone.now() + dt.timedelta(days=1)).astimezone(dt.UTC)

    response = owner.post(
        f"/posts/{post.pk}/reschedule/",
        {"scheduled_date": later.date().isoformat(), "scheduled_time": "08:15", "time_zone": "UTC"},
        follow=True,
    )

    assert messages_on(response) == said
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=post.pk).status == status
        assert not DueJob.objects.filter(post_id=post.pk).exists()


def test_a_calendar_move_never_schedules_a_post_that_stopped_being_scheduled(in_alpha: Agency) -> None:
    # The calendar checked "scheduled", then a reviewer sent the post back as a draft
    post = PostFactory(status=PostStatus.DRAFT)

    with pytest.raises(PostStateError, match="open it to schedule it"):
        post_schedule(
            post=post,
            scheduled_at=timezone.now() + dt.timedelta(days=2),
            time_zone="UTC",
            by=None,
            only_from=frozenset({PostStatus.SCHEDULED}),
        )

    assert Post.objects.get(pk=post.pk).status == PostStatus.DRAFT
    assert not DueJob.objects.filter(post_id=post.pk).exists()


def test_another_agencys_post_is_not_found(alpha: Agency, beta: Agency, owner: Client) -> None:
    with schema_context(beta.schema_name):
        theirs = PostFactory()
    for url in (f"/posts/{theirs.pk}/", f"/posts/{theirs.pk}/edit/", f"/posts/{theirs.pk}/cancel/"):
        response = owner.post(url) if url.endswith("cancel/") else owner.get(url)
        assert response.status_code == 404, url
    with schema_context(beta.schema_name):
        assert Post.objects.get(pk=theirs.pk).status == PostStatus.SCHEDULED


# --- The list ---


def test_the_list_filters_and_its_query_count_does_not_grow_with_rows(alpha: Agency, owner: Client) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        PostFactory.create_batch(2, account=account)

    with CaptureQueriesContext(connection) as few:
        response = owner.get("/posts/")
    assert response.status_code == 200
    assert len(find(find(html(response), "tbody")[0], "tr")) == 2

    with schema_context(alpha.schema_name):
        PostFactory.create_batch(10, account=TikTokAccountFactory())
        PostFactory(account=account, status=PostStatus.DRAFT, scheduled_at=None, caption="Unscheduled idea")
    with CaptureQueriesContext(connection) as many:
        response = owner.get("/posts/")
    rows = find(find(html(response), "tbody")[0], "tr")
    assert len(rows) == 13
    assert "Unscheduled idea" in text(rows[0])  # no time yet: on top, then newest scheduled first
    assert len(many.captured_queries) == len(few.captured_queries)

    drafts = owner.get(f"/posts/?status=draft&account={account.pk}")
    assert [text(find(row, "td")[2]) for row in find(find(html(drafts), "tbody")[0], "tr")] == [
        "Unscheduled idea"
    ]
