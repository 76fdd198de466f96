"""The dashboard: the next posts in the person's time zone, what needs attention, account health."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus
from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.posts.models import AttemptKind, AttemptOutcome, PostStatus, PublishAttempt, ReviewOutcome
from apps.publishing.services import account_posts_last_24h
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"


def signed_in(agency: Agency, time_zone: str = "UTC") -> Client:
    with schema_context(agency.schema_name):
        User.objects.filter(email=OWNER).update(time_zone=time_zone)
    client = client_for(agency)
    assert client.post("/login/", {"username": OWNER, "password": OWNER_PASSWORD}).status_code == 302
    return client


def page(client: Client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_next_posts_show_in_the_persons_time_zone_soonest_first(alpha: Agency) -> None:
    # Given posts scheduled at 23:30 and 22:00 UTC two days from now, and one already published
    day = (timezone.now() + dt.timedelta(days=2)).date()
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="luna.bakes")
        later = PostFactory(
            account=account,
            caption="Sourdough at dawn",
            scheduled_at=dt.datetime.combine(day, dt.time(23, 30), tzinfo=dt.UTC),
        )
        PostFactory(
            account=account,
            caption="Crumb shot",
            scheduled_at=dt.datetime.combine(day, dt.time(22, 0), tzinfo=dt.UTC),
            status=PostStatus.PENDING_APPROVAL,
        )
        PostFactory(
            account=account,
            caption="Already out",
            status=PostStatus.PUBLISHED,
            publish_id="p_1",
            published_at=timezone.now(),
        )

    # When someone in Tokyo (UTC+9) opens the dashboard
    html = page(signed_in(alpha, "Asia/Tokyo"))

    # Then both upcoming posts show at Tokyo's time (the next day there), soonest first, with their status
    next_day = day + dt.timedelta(days=1)
    assert f"{next_day:%a} {next_day.day} {next_day:%b}, 08:30" in html
    assert f"{next_day:%a} {next_day.day} {next_day:%b}, 07:00" in html
    assert html.index("Crumb shot") < html.index("Sourdough at dawn")
    assert "Waiting for approval" in html and "status-scheduled" in html
    assert "@luna.bakes" in html
    assert "Already out" not in html
    assert "Times in Asia/Tokyo" in html
    assert (
        f'datetime="{later.scheduled_at.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat()}"' in html
    )


def test_only_the_next_ten_posts_are_listed(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        for hour in range(1, 13):
            PostFactory(
                account=account,
                caption=f"Post number {hour:02d}",
                scheduled_at=timezone.now() + dt.timedelta(hours=hour),
            )

    html = page(signed_in(alpha))

    assert "Post number 10" in html
    assert "Post number 11" not in html and "Post number 12" not in html


def test_posts_needing_attention_show_their_error(alpha: Agency) -> None:
    # Given a post whose outcome is unknown, one that failed today and one that failed last month
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        PostFactory(
            account=account,
            caption="Unknown outcome",
            status=PostStatus.NEEDS_ATTENTION,
            last_error_message="We asked TikTok to create this post but never learned whether it did.",
        )
        PostFactory(
            account=account,
            caption="Refused today",
            status=PostStatus.FAILED,
            last_error_message="TikTok flagged this post as possible spam.",
        )
        old = PostFactory(account=account, caption="Refused long ago", status=PostStatus.FAILED)
        type(old).objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=8))

    html = page(signed_in(alpha))

    assert "Unknown outcome" in html and "never learned whether it did" in html
    assert "Refused today" in html and "TikTok flagged this post as possible spam." in html
    assert "Refused long ago" not in html
    assert "status-needs_attention" in html and "status-failed" in html


def test_accounts_needing_reconnection_say_why_and_link_to_accounts(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        TikTokAccountFactory(username="fine.account")
        TikTokAccountFactory(
            username="expired.account",
            status=AccountStatus.NEEDS_REAUTH,
            status_reason="TikTok refused to renew the authorisation.",
        )
        TikTokAccountFactory(
            username="removed.account",
            status=AccountStatus.REVOKED,
            status_reason="The creator removed Postline's access on TikTok.",
        )

    html = page(signed_in(alpha))

    assert "Accounts to reconnect" in html
    assert "@expired.account" in html and "TikTok refused to renew the authorisation." in html
    assert "@removed.account" in html and "removed Postline&#x27;s access" in html
    assert "@fine.account" not in html
    assert 'href="/accounts/"' in html


def test_daily_cap_warning_from_twelve_posts_in_24_hours(alpha: Agency) -> None:
    # Given one account that sent 12 posts in the last day and one that sent 11 (and more, days ago)
    now = timezone.now()
    with schema_context(alpha.schema_name):
        busy = TikTokAccountFactory(username="daily.drills")
        calm = TikTokAccountFactory(username="calm.creator")
        for account, recent in ((busy, 12), (calm, 11)):
            for index in range(recent + 3):
                post = PostFactory(
                    account=account,
                    status=PostStatus.PUBLISHED,
                    publish_id=f"p_{account.username}_{index}",
                    published_at=now,
                )
                started = now - dt.timedelta(hours=1 if index < recent else 30)
                PublishAttempt.objects.create(
                    post=post,
                    attempt_number=1,
                    kind=AttemptKind.INIT,
                    outcome=AttemptOutcome.OK,
                    started_at=started,
                    finished_at=started,
                )
        assert account_posts_last_24h(account_id=busy.pk) == 12
        assert account_posts_last_24h(account_id=calm.pk) == 11

    html = page(signed_in(alpha))

    assert "Close to TikTok's daily limit" in html
    assert "@daily.drills</strong> sent 12 posts in the last 24 hours" in html
    assert "@calm.creator</strong> sent" not in html


def test_empty_dashboard_says_what_to_do_next(alpha: Agency) -> None:
    client = signed_in(alpha)
    assert "No TikTok account is connected yet." in page(client)

    with schema_context(alpha.schema_name):
        TikTokAccountFactory()
    html = page(client)

    assert "No posts scheduled." in html and 'href="/posts/new/">Create one</a>' in html
    assert "Nothing needs your attention." in html
    assert "Every account is connected" in html


def test_someone_without_any_account_is_told_who_shares_one_not_to_connect_one(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        TikTokAccountFactory()  # the agency has one, not shared with this editor
        User.objects.create_user("ed@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    client = client_for(alpha)
    assert (
        client.post("/login/", {"username": "ed@alpha.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )

    html = page(client)

    assert "No TikTok account is shared with you yet." in html and "on the Team page" in html
    assert "No TikTok account is connected yet." not in html and ">Connect one<" not in html


def test_a_client_reviewer_is_not_invited_to_create_posts(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        reviewer = User.objects.create_user("client@alpha.example", OWNER_PASSWORD, role=Role.CLIENT)
        access_set(user=reviewer, account=TikTokAccountFactory(), perms=ROLE_DEFAULTS[Role.CLIENT], by=None)
    client = client_for(alpha)
    client.post("/login/", {"username": "client@alpha.example", "password": OWNER_PASSWORD})

    html = page(client)

    assert "No posts scheduled." in html and "Create one" not in html


def test_signed_out_visitors_are_sent_to_sign_in(alpha: Agency) -> None:
    response = client_for(alpha).get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_query_count_does_not_grow_with_posts_or_accounts(alpha: Agency) -> None:
    client = signed_in(alpha)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page(client)
        return len([q for q in captured if not q["sql"].startswith("SET search_path")])

    def add(make: Callable[[], None], times: int) -> None:
        with schema_context(alpha.schema_name):
            for _ in range(times):
                make()

    def rows() -> None:
        account = TikTokAccountFactory(status=AccountStatus.NEEDS_REAUTH, status_reason="Reconnect")
        PostFactory(account=account)
        PostFactory(account=TikTokAccountFactory(), status=PostStatus.FAILED, last_error_message="No")
        PostFactory(status=PostStatus.NEEDS_ATTENTION)
        # Every list the page reads with only some columns: a column it shows but did not read
        # would cost a query per row here.
        PostFactory(status=PostStatus.SCHEDULED, scheduled_at=timezone.now() + dt.timedelta(hours=1))
        owner = User.objects.get(email=OWNER)
        PostFactory(
            status=PostStatus.DRAFT,
            created_by=owner,
            review_outcome=ReviewOutcome.REJECTED,
            review_comment="Shorter, please.",
            reviewed_by=User.objects.create_user(f"rev{uuid.uuid4().hex[:8]}@alpha.example", OWNER_PASSWORD),
            reviewed_at=timezone.now(),
        )
        TikTokAccountFactory(
            posting_blocked_code="spam_risk_too_many_posts",
            posting_blocked_since=timezone.now(),
            posting_recheck_at=timezone.now() + dt.timedelta(hours=3),
        )

    add(rows, 1)
    few = queries()
    add(rows, 6)
    many = queries()
    html = page(client)
    assert html.count("Shorter, please.") == 7 and "TikTok stopped these accounts from posting" in html

    # The agency (by host), the session, the user, then one query each: next posts, posts needing
    # attention, the last day's posting counts, the accounts to reconnect, near the daily cap or
    # stopped by TikTok (one read), the app-wide posting limit, decisions on the person's posts,
    # posts waiting for their approval. (Whether any account exists is asked only when no
    # account is in those lists.)
    assert few == many == 10
