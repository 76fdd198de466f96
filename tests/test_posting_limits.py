"""Limits TikTok puts on posting, told before they bite: a banned or capped creator and the
app-wide cap turn health red on the dashboard and the accounts page, and stop further calls to
TikTok until a recheck shows they cleared. The fake TikTok over a real socket."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.audit.models import AuditLog
from apps.fake_tiktok.creators import BANNED_OPEN_ID, PUBLIC_OPEN_ID
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus, PublishMode
from apps.publishing.services import post_publish
from apps.tiktok.models import AppPostingLimit
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.test_publishing import claim, publish_and_poll, scheduled

pytestmark = pytest.mark.django_db


def owner_of(agency: Agency) -> Client:
    client = client_for(agency)
    assert (
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )
    return client


def page(client: Client, path: str) -> str:
    return html.unescape(client.get(path).content.decode())


def publish_one(fake: FakeTikTok, **post: object) -> Post:
    claimed = claim(scheduled(fake, **post))
    post_publish(post_id=str(claimed.pk))
    return Post.objects.get(pk=claimed.pk)


def test_a_banned_creator_is_shown_red_and_its_next_posts_call_tiktok_no_more(
    alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    with schema_context(alpha.schema_name):
        first = publish_one(tiktok, open_id=BANNED_OPEN_ID)
        assert first.status == PostStatus.FAILED
        banned = str(TikTokAccount.objects.get(open_id=BANNED_OPEN_ID))
        assert first.last_error_message.startswith(f"TikTok has banned {banned} from posting.")
        calls = len(tiktok.calls)

        second = publish_one(tiktok, open_id=BANNED_OPEN_ID)

        assert (
            second.status == PostStatus.FAILED
            and second.last_error_code == "spam_risk_user_banned_from_posting"
        )
        assert "Nothing was sent" in second.last_error_message
        assert len(tiktok.calls) == calls  # nothing reached TikTok for it
        assert AuditLog.objects.filter(action="account.posting_blocked").count() == 1

    owner = owner_of(alpha)
    dashboard = page(owner, "/")
    assert "TikTok stopped these accounts from posting" in dashboard
    assert f"TikTok has banned {banned} from posting" in dashboard
    assert "Every account is connected and below TikTok's daily limit" not in dashboard
    accounts = page(owner, "/accounts/")
    assert "Cannot post" in accounts and f"TikTok has banned {banned}" in accounts


def test_a_daily_cap_lifts_once_tiktok_answers_without_it_at_the_recheck(
    alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    with schema_context(alpha.schema_name):
        tiktok.add_fault("creator_info", "spam_risk", count=1)  # 200 spam_risk_too_many_posts
        capped = publish_one(tiktok, open_id=PUBLIC_OPEN_ID)
        assert capped.last_error_code == "spam_risk_too_many_posts"
        account = TikTokAccount.objects.get(open_id=PUBLIC_OPEN_ID)
        assert account.posting_blocked_code == "spam_risk_too_many_posts"
        assert len(tiktok.create_post_calls()) == 0

        # When the recheck time has come, the next post asks TikTok again, which now says yes
        TikTokAccount.objects.filter(pk=account.pk).update(
            posting_recheck_at=timezone.now() - dt.timedelta(seconds=1)
        )
        done = publish_and_poll(claim(scheduled(tiktok, open_id=PUBLIC_OPEN_ID)), polls=10)

        assert done.status == PostStatus.PUBLISHED
        account.refresh_from_db()
        assert (account.posting_blocked_code, account.posting_recheck_at) == ("", None)
        assert AuditLog.objects.filter(action="account.posting_unblocked").exists()
    assert "Every account is connected and below TikTok's daily limit" in page(owner_of(alpha), "/")


def test_the_app_wide_cap_stops_every_agency_and_says_so_on_each_dashboard(
    alpha: Agency, beta: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given TikTok refused an init in one agency because the whole app reached its cap
    tiktok.add_fault("init", "error", status=403, code="reached_active_user_cap", count=1)
    with schema_context(alpha.schema_name):
        refused = publish_one(tiktok, open_id=PUBLIC_OPEN_ID)
        assert (
            refused.status == PostStatus.FAILED
            and "no account can post for now" in refused.last_error_message
        )
    assert AppPostingLimit.objects.filter(code="reached_active_user_cap").exists()
    calls = len(tiktok.calls)

    # When another agency's post falls due, for another creator
    with schema_context(beta.schema_name):
        other = publish_one(tiktok, open_id="fake-open-studio-006")

        # Then it fails at once with the reason, and TikTok hears nothing
        assert other.status == PostStatus.FAILED and other.last_error_code == "reached_active_user_cap"
    assert len(tiktok.calls) == calls
    dashboard = page(owner_of(beta), "/")
    assert "No account can post for now" in dashboard
    assert "limit of active posting accounts" in dashboard


def test_the_accounts_page_counts_posts_and_inbox_drafts_over_a_rolling_day(
    alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    with schema_context(alpha.schema_name):
        publish_and_poll(claim(scheduled(tiktok, open_id=PUBLIC_OPEN_ID)), polls=10)
        publish_and_poll(claim(scheduled(tiktok, open_id=PUBLIC_OPEN_ID, mode=PublishMode.INBOX)), polls=10)

    accounts = page(owner_of(alpha), "/accounts/")

    assert "2 of about 15 posts" in accounts
    assert "1 of 5 inbox drafts" in accounts
