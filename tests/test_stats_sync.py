"""Daily stats snapshots, taken by a real Dramatiq worker, land in the right agency."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from django_tenants.utils import schema_context
from dramatiq import Message

from apps.accounts.models import TikTokAccount
from apps.accounts.tasks import accounts_sync_all_agencies, accounts_sync_stats
from apps.analytics.models import AccountSnapshot
from apps.fake_tiktok.server import FakeTikTok
from apps.tiktok.client import TikTokClient
from tests.conftest import wait_for
from tests.factories import TikTokAccountFactory


def snapshot_in(schema: str, django_db_blocker: Any) -> AccountSnapshot | None:
    with django_db_blocker.unblock(), schema_context(schema):
        return AccountSnapshot.objects.select_related("account").first()


def test_daily_sync_snapshots_each_account_in_its_own_agency(
    make_agency: Any, tiktok: FakeTikTok, worker: Any, django_db_blocker: Any
) -> None:
    # Given two agencies, each with a different connected creator
    creators = {"fake-open-public-001": make_agency(), "fake-open-private-002": make_agency()}
    for open_id, agency in creators.items():
        tokens = tiktok.issue_tokens(open_id)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            TikTokAccountFactory(
                open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
            )

    # When the daily job runs on the worker
    accounts_sync_all_agencies.send()

    # Then each agency holds exactly its own creator's snapshot, with TikTok's numbers
    for open_id, agency in creators.items():
        snapshot = wait_for(lambda a=agency: snapshot_in(a.schema_name, django_db_blocker), timeout=30)
        assert snapshot.account.open_id == open_id
        profile = TikTokClient(limiter=None).user_info(
            access_token=tiktok.issue_tokens(open_id)["access_token"]
        )
        assert snapshot.followers == profile.follower_count
        assert snapshot.views > 0 and 0 < snapshot.engagement_rate < 1
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            assert AccountSnapshot.objects.count() == 1
            assert TikTokAccount.objects.get().stats_synced_at is not None


def test_a_message_without_an_agency_is_refused(
    make_agency: Any, tiktok: FakeTikTok, worker: Any, django_db_blocker: Any
) -> None:
    # A tenant actor's message sent from the public schema names no agency: the worker
    # must refuse it rather than run it somewhere.
    agency = make_agency()
    tokens = tiktok.issue_tokens("fake-open-public-001")
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account = TikTokAccountFactory(open_id="fake-open-public-001", access_token=tokens["access_token"])
    accounts_sync_stats.send(str(account.pk))  # from the public schema: no agency stamped
    accounts_sync_all_agencies.send()  # a correct run afterwards, to know the worker got this far
    wait_for(lambda: snapshot_in(agency.schema_name, django_db_blocker), timeout=30)
    user_info_calls = [c for c in tiktok.calls if c["endpoint"] == "user_info"]
    assert len(user_info_calls) == 1  # only the stamped message did any work


@pytest.mark.django_db
def test_the_daily_sync_spreads_accounts_over_the_window_each_at_the_same_moment_every_day(
    in_alpha: Any, broker_namespace: str, settings: Any
) -> None:
    # Given 40 connected accounts and a one-hour window
    settings.STATS_SYNC_SPREAD_SECONDS = 3600
    accounts = [str(TikTokAccountFactory().pk) for _ in range(40)]

    def queued() -> dict[str, int]:
        """Account id -> seconds from now its snapshot is due, from the broker's delay queue."""
        client = redis.Redis.from_url(settings.DRAMATIQ_BROKER_URL)
        due = {}
        for data in client.hvals(f"{broker_namespace}:stats.DQ.msgs"):
            message = Message.decode(data)
            due[message.args[0]] = round(message.options["eta"] / 1000 - time.time())
        client.delete(f"{broker_namespace}:stats.DQ.msgs", f"{broker_namespace}:stats.DQ")
        return due

    # When the daily job runs on two days
    accounts_sync_all_agencies.fn()
    first = queued()
    accounts_sync_all_agencies.fn()
    second = queued()

    # Then every account is queued once, at its own moment in the hour, the same on both days
    assert set(first) >= set(accounts)
    moments = [first[a] for a in accounts]
    assert all(0 <= m <= 3600 for m in moments)
    assert max(moments) - min(moments) > 1800, "the snapshots bunch up instead of spreading"
    assert all(abs(first[a] - second[a]) <= 2 for a in accounts)
