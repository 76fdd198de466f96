"""Token lifecycle and rate limits against the fake TikTok over a real socket."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.services import AccountNeedsReauth, account_access_token, account_connect
from apps.audit.models import AuditLog
from apps.common.crypto import Secret
from apps.fake_tiktok.server import FakeTikTok
from apps.tiktok.client import TikTokClient, TokenGrant, UserInfo
from tenants.models import Agency
from tests.factories import TikTokAccountFactory

CREATOR = "fake-open-public-001"


def token_calls(fake: FakeTikTok) -> list[dict[str, Any]]:
    return [c for c in fake.calls if c["endpoint"] == "token"]


def expired_account(fake: FakeTikTok, **extra: Any) -> TikTokAccount:
    tokens = fake.issue_tokens(CREATOR)
    return TikTokAccountFactory(
        open_id=CREATOR,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        access_expires_at=timezone.now() - dt.timedelta(minutes=1),
        **extra,
    )


def test_two_concurrent_refreshes_make_one_call_and_both_get_a_working_token(
    make_agency: Any, tiktok: FakeTikTok, django_db_blocker: Any
) -> None:
    # Given an account whose access token has expired, committed so two threads see it
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account_id = expired_account(tiktok).pk
    connection.set_schema_to_public()
    before = len(token_calls(tiktok))
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def use_account() -> None:
        try:
            with django_db_blocker.unblock(), schema_context(agency.schema_name):
                account = TikTokAccount.objects.get(pk=account_id)
                barrier.wait()
                results.append(account_access_token(account=account).reveal())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # When two workers need the token at the same moment
    threads = [threading.Thread(target=use_account) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then TikTok saw one refresh, and both callers hold the same, working token
    assert errors == []
    assert len(token_calls(tiktok)) - before == 1
    assert len(results) == 2 and results[0] == results[1]
    info = TikTokClient(limiter=None).user_info(access_token=results[0])
    assert info.open_id == CREATOR


@pytest.mark.django_db
def test_refused_refresh_marks_the_account_needs_reauth(in_alpha: Agency, tiktok: FakeTikTok) -> None:
    account = expired_account(tiktok, username="refused")
    tiktok.add_fault("token", "invalid_grant", count=1)

    with pytest.raises(AccountNeedsReauth) as caught:
        account_access_token(account=account)

    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_REAUTH
    assert account.status_reason == caught.value.reason
    assert "Reconnect the account" in account.status_reason
    entry = AuditLog.objects.get(action="account.needs_reauth")
    assert entry.changes["code"] == "invalid_grant" and entry.actor is None
    # A later call does not hammer TikTok with a refresh that cannot work.
    calls = len(token_calls(tiktok))
    with pytest.raises(AccountNeedsReauth):
        account_access_token(account=TikTokAccount.objects.get(pk=account.pk))
    assert len(token_calls(tiktok)) == calls


@pytest.mark.django_db
def test_rotation_always_keeps_the_newest_refresh_token(in_alpha: Agency, tiktok: FakeTikTok) -> None:
    account = expired_account(tiktok)
    first = account_access_token(account=account)
    TikTokAccount.objects.filter(pk=account.pk).update(access_expires_at=timezone.now())
    second = account_access_token(account=TikTokAccount.objects.get(pk=account.pk))
    assert first != second
    assert len(token_calls(tiktok)) == 2
    assert TikTokAccount.objects.get(pk=account.pk).status == AccountStatus.ACTIVE


@pytest.mark.django_db
def test_reconnecting_never_wipes_a_stored_refresh_token(
    in_alpha: Agency, alpha: Agency, tiktok: FakeTikTok
) -> None:
    account = TikTokAccountFactory(open_id=CREATOR, refresh_token="rft.keep-me")
    grant = TokenGrant(
        open_id=CREATOR,
        access_token=Secret("act.new"),
        refresh_token=Secret(""),
        expires_in=7200,
        refresh_expires_in=0,
        scopes=frozenset(settings.TIKTOK_SCOPES),
    )
    account_connect(grant=grant, user_info=UserInfo(open_id=CREATOR), by=None, agency=alpha)
    account.refresh_from_db()
    assert account.refresh_token.reveal() == "rft.keep-me"
    assert account.access_token.reveal() == "act.new"


def test_rate_limit_holds_across_two_processes(tiktok: FakeTikTok, tmp_path: Path) -> None:
    # Given one creator token, and creator_info's limit of 20 calls a minute
    token = tiktok.issue_tokens(CREATOR)["access_token"]
    go = tmp_path / "go"
    env = {**os.environ, "TIKTOK_API_BASE_URL": tiktok.base_url, "LOG_LEVEL": "WARNING"}

    # When two processes each try 15 calls at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.procs.creator_info_burst", token, "15", str(go)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=settings.BASE_DIR,
        )
        for _ in range(2)
    ]
    go.touch()
    outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]

    # Then exactly 20 reached TikTok and the other 10 were held back, never sent
    assert sum(o["sent"] for o in outputs) == 20
    assert sum(o["deferred"] for o in outputs) == 10
    sent = [c for c in tiktok.calls if c["endpoint"] == "creator_info" and c["status"] == 200]
    assert len(sent) == 20
