"""One agency's state never stops another's publishing, and an agency that is not active does
nothing in the background: the dispatcher isolates each job, drops those of agencies that are
gone and skips those of suspended or deleted ones (until reactivated); webhooks are not applied in
them; deleting revokes the agency's TikTok grants; purging leaves nothing of it behind."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.models import DueJob
from apps.tiktok.client import TikTokClient
from apps.tiktok.errors import TikTokError
from apps.tiktok.models import TikTokRoute, WebhookDelivery
from apps.web.models import WelcomeToken
from tenants.models import Agency, Domain
from tenants.services import agency_delete, agency_purge, agency_reactivate, agency_suspend
from tests.conftest import wait_for
from tests.factories import TikTokAccountFactory
from tests.test_publishing import scheduled
from tests.test_tiktok_webhooks import deliver


def stray_job(schema: str, *, minutes_ago: int = 5) -> DueJob:
    return DueJob.objects.create(
        schema_name=schema,
        post_id=uuid.uuid4(),
        kind="publish",
        due_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
    )


@pytest.mark.django_db
def test_a_job_of_a_gone_agency_or_schema_never_stops_the_others(
    alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post of alpha due now, and before it in the queue a job whose agency was purged and
    # one whose agency's schema is missing (its posts table cannot be read)
    with schema_context(alpha.schema_name):
        post = scheduled(tiktok)
    gone = stray_job("purged_agency_x")
    Agency.objects.create(slug="no-schema", schema_name="no_schema", name="No schema")
    broken = stray_job("no_schema")

    # When the dispatcher ticks
    sent = dispatch_due()

    # Then alpha's post is handed out, the purged agency's job is removed, and the broken one is
    # put off (tried again later, not at every tick)
    assert [d.post_id for d in sent] == [str(post.pk)]
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    assert not DueJob.objects.filter(pk=gone.pk).exists()
    broken.refresh_from_db()
    assert broken.leased_until is not None and broken.leased_until > timezone.now()
    assert dispatch_due() == []


def test_purge_leaves_nothing_of_the_agency_in_the_public_schema(
    make_agency: Any, tiktok: FakeTikTok, media_root: Path, django_db_blocker: Any
) -> None:
    # Given an agency with a due post, a connected creator's webhook route and a welcome token
    agency = make_agency()
    with django_db_blocker.unblock():
        with schema_context(agency.schema_name):
            scheduled(tiktok)
        TikTokRoute.objects.create(open_id="fake-open-public-001", agency=agency)
        WelcomeToken.objects.create(
            token_hash=uuid.uuid4().hex,
            agency=agency,
            user_id=uuid.uuid4(),
            expires_at=timezone.now() + dt.timedelta(minutes=2),
        )

        # When it is deleted and purged
        agency_purge(agency=agency_delete(agency=Agency.objects.get(pk=agency.pk)))

        # Then none of its public rows are left
        assert not DueJob.objects.filter(schema_name=agency.schema_name).exists()
        assert not Domain.objects.filter(tenant_id=agency.pk).exists()
        assert not TikTokRoute.objects.filter(agency_id=agency.pk).exists()
        assert not WelcomeToken.objects.filter(agency_id=agency.pk).exists()
        assert not Agency.objects.filter(pk=agency.pk).exists()


def test_purge_and_a_dispatcher_holding_its_job_never_deadlock(
    make_agency: Any, tiktok: FakeTikTok, media_root: Path, django_db_blocker: Any
) -> None:
    # Given an agency with a due post, and a dispatcher that has taken its job row (and not yet
    # claimed the post) when the purge starts
    agency = make_agency()
    with django_db_blocker.unblock():
        with schema_context(agency.schema_name):
            post = scheduled(tiktok)
        connection.set_schema_to_public()
        agency_delete(agency=Agency.objects.get(pk=agency.pk))
        db = connection.settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    dispatcher = psycopg.connect(url)
    dispatcher.execute(
        "SELECT id FROM public.publishing_duejob WHERE schema_name = %s FOR UPDATE", [agency.schema_name]
    )
    errors: list[BaseException] = []

    def purge() -> None:
        try:
            with django_db_blocker.unblock():
                agency_purge(agency=Agency.objects.get(pk=agency.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    purging = threading.Thread(target=purge)
    purging.start()
    with psycopg.connect(url, autocommit=True) as watcher:

        def purge_waits() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            return bool(row and row[0])

        wait_for(purge_waits, timeout=20)

    # When the dispatcher goes on to claim the post, and commits
    table = f'"{agency.schema_name}".posts_post'
    try:
        dispatcher.execute(f"UPDATE {table} SET status = 'publishing' WHERE id = %s", [post.pk])  # noqa: S608
        dispatcher.commit()
    finally:
        dispatcher.close()
        purging.join(timeout=30)

    # Then both finish: neither is chosen as a deadlock's victim
    assert errors == []
    with django_db_blocker.unblock():
        assert not Agency.objects.filter(pk=agency.pk).exists()
        assert not DueJob.objects.filter(schema_name=agency.schema_name).exists()


@pytest.mark.django_db
def test_a_suspended_agencys_due_posts_wait_and_go_out_when_it_is_reactivated(
    alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a suspended agency with a post due now and one whose time passed two hours ago
    with schema_context(alpha.schema_name):
        due = scheduled(tiktok)
        missed = scheduled(tiktok, open_id="fake-open-private-002", privacy_level="FOLLOWER_OF_CREATOR")
        two_hours_ago = timezone.now() - dt.timedelta(hours=2)
        Post.objects.filter(pk=missed.pk).update(scheduled_at=two_hours_ago)
    DueJob.objects.filter(post_id=missed.pk).update(due_at=two_hours_ago)
    agency_suspend(agency=alpha)

    # Then the dispatcher leaves its jobs alone: nothing is handed out, nothing is taken off
    assert dispatch_due() == []
    assert DueJob.objects.filter(schema_name=alpha.schema_name, leased_until__isnull=True).count() == 2
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=due.pk).status == PostStatus.SCHEDULED

    # When it is reactivated, the post due now goes out, and the one two hours late fails, saying why
    agency_reactivate(agency=Agency.objects.get(pk=alpha.pk))
    assert [d.post_id for d in dispatch_due()] == [str(due.pk)]
    with schema_context(alpha.schema_name):
        late = Post.objects.get(pk=missed.pk)
    assert late.status == PostStatus.FAILED and late.last_error_code == "missed_while_inactive"
    assert "while the agency was suspended" in late.last_error_message
    assert "Nothing was sent to TikTok" in late.last_error_message
    assert not DueJob.objects.filter(post_id=missed.pk).exists()
    assert tiktok.calls == []


@pytest.mark.django_db
def test_a_webhook_for_a_suspended_agencys_creator_is_recorded_not_applied(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(open_id="fake-open-public-001")
    TikTokRoute.objects.create(open_id="fake-open-public-001", agency=alpha)
    agency_suspend(agency=alpha)

    assert deliver("authorization.removed", {"reason": 1}) == 200

    assert WebhookDelivery.objects.filter(event="authorization.removed", agencies=0).count() == 1
    with schema_context(alpha.schema_name):
        assert TikTokAccount.objects.get(pk=account.pk).status == AccountStatus.ACTIVE


def test_deleting_an_agency_revokes_its_grants_at_tiktok_and_suspending_does_not(
    make_agency: Any, tiktok: FakeTikTok, worker: Any, django_db_blocker: Any
) -> None:
    # Given two agencies with a connected account each
    deleted, suspended = make_agency(), make_agency()
    tokens = {}
    for agency, open_id in ((deleted, "fake-open-public-001"), (suspended, "fake-open-private-002")):
        grant = tiktok.issue_tokens(open_id)
        tokens[agency.slug] = grant["access_token"]
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            TikTokAccountFactory(
                open_id=open_id, access_token=grant["access_token"], refresh_token=grant["refresh_token"]
            )

    # When one is suspended and the other deleted
    with django_db_blocker.unblock():
        agency_suspend(agency=suspended)
        agency_delete(agency=deleted)
        connection.set_schema_to_public()

    # Then the deleted one's grant stops working at TikTok (a worker revoked it), and it is recorded
    client = TikTokClient(limiter=None)

    def revoked(token: str) -> bool:
        try:
            client.creator_info(access_token=token)
        except TikTokError as exc:
            return exc.code == "access_token_invalid"
        return False

    wait_for(lambda: revoked(tokens[deleted.slug]), timeout=30)
    with django_db_blocker.unblock(), schema_context(deleted.schema_name):
        entry = wait_for(lambda: AuditLog.objects.filter(action="account.revoked").first(), timeout=10)
        assert entry.changes["revoked_at_tiktok"] is True
        account = TikTokAccount.all_objects.get()
        assert account.status == AccountStatus.REVOKED and not account.access_token
    # And the suspended one (reversible) keeps its grant
    assert not revoked(tokens[suspended.slug])
