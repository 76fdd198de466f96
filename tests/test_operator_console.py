"""The operators' console: every agency's figures from a public table, the platform's state, and
status changes that need a reason, which the owner is emailed and both audit logs keep."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus
from apps.audit.models import AuditLog
from apps.common.metrics import publish_lateness_observe
from apps.media.models import LibraryKind, MediaItem
from apps.operators.models import AgencyStats, OperatorAuditLog
from apps.operators.stats import agency_stats_refresh
from apps.posts.models import PostStatus
from apps.publishing.models import DueJob, JobKind
from apps.users.models import User
from tenants.models import Agency, AgencyStatus
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text, mail_to, operator_client
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory, UserFactory

pytestmark = pytest.mark.django_db

CONSOLE = "/operators/"


@pytest.fixture
def operator() -> Client:
    return operator_client()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any, jobs: Any) -> Any:
    """Run what a block commits (pytest-django's capture) and the web jobs it queued, here."""

    @contextmanager
    def block() -> Iterator[None]:
        with django_capture_on_commit_callbacks(execute=True):
            yield
        jobs("web")

    return block


def _post(status: str, **values: Any) -> Any:
    """A post in `status`, with what the database requires of that status."""
    if status in {PostStatus.PUBLISHED, PostStatus.PROCESSING}:
        values.setdefault("publish_id", f"v_pub_{uuid.uuid4().hex[:12]}")
    if status == PostStatus.PUBLISHED:
        values.setdefault("published_at", timezone.now())
    return PostFactory(status=status, **values)


def _row(html: str, slug: str) -> str:
    match = re.search(rf'<tr data-slug="{slug}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {slug}"
    return match.group(1)


def _cell(row: str, name: str) -> str:
    match = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert match, f"no {name} cell"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1)).replace("\xa0", " ")).strip()


def test_the_list_shows_each_agencys_figures(alpha: Agency, beta: Agency, operator: Client) -> None:
    # Given: alpha with two more members, three accounts (one to reconnect), posts in five states
    # this month, one last month, and 3.5 MB of media; beta with one account and two posts.
    now = timezone.now()
    with schema_context(alpha.schema_name):
        UserFactory.create_batch(2)
        UserFactory(is_active=False)
        account = TikTokAccountFactory()
        TikTokAccountFactory()
        TikTokAccountFactory(status=AccountStatus.NEEDS_REAUTH)
        for status, count in (
            (PostStatus.PUBLISHED, 3),
            (PostStatus.FAILED, 1),
            (PostStatus.SCHEDULED, 2),
            (PostStatus.NEEDS_ATTENTION, 1),
            (PostStatus.CANCELLED, 1),
        ):
            for _ in range(count):
                _post(status, account=account, scheduled_at=now)
        PostFactory(account=account, status=PostStatus.FAILED, scheduled_at=now - dt.timedelta(days=45))
        PostMediaFactory(size_bytes=2_500_000)
        PostMediaFactory(size_bytes=1_000_000)
        # A library video reused by two posts is one stored object: counted once
        shared = MediaItem.objects.create(
            kind=LibraryKind.VIDEO,
            name="shared.mp4",
            file="library/video/shared.mp4",
            size_bytes=500_000,
            mime_type="video/mp4",
            sha256="0" * 64,
        )
        for _ in range(2):
            PostMediaFactory(size_bytes=500_000, library_item=shared, file=shared.file.name)
    with schema_context(beta.schema_name):
        other = TikTokAccountFactory()
        _post(PostStatus.PUBLISHED, account=other, scheduled_at=now)
        PostFactory(account=other, status=PostStatus.DRAFT, scheduled_at=None)

    # When: the figures are refreshed (as the scheduler's job does) and the console is opened
    call_command("refresh_agency_stats")
    html = operator.get(CONSOLE).content.decode()

    # Then
    a = _row(html, "alpha")
    assert _cell(a, "members") == "3"
    assert _cell(a, "accounts") == "3 (1)"
    assert _cell(a, "posts").startswith("8 ")
    assert "cancelled: 1, failed: 1, needs_attention: 1, published: 3, scheduled: 2" in _cell(a, "posts")
    assert _cell(a, "failure-rate") == "25 %"  # 1 failed of 4 that TikTok answered
    assert _cell(a, "storage") == "3.8 MB"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", _cell(a, "last-activity"))
    b = _row(html, "beta")
    assert _cell(b, "members") == "1"
    assert _cell(b, "accounts") == "1 (0)"
    assert _cell(b, "posts").startswith("2 ")
    assert _cell(b, "failure-rate") == "0 %"
    assert _cell(b, "storage") == "0 bytes"
    stats = AgencyStats.objects.get(agency=alpha)
    assert stats.refreshed_at >= now
    assert f"{stats.refreshed_at:%Y-%m-%d %H:%M}" in _cell(a, "refreshed")


def _public_agencies(count: int) -> list[Agency]:
    """Agencies as the console sees them: rows and figures in the public schema (the page never
    visits a schema, so these need none)."""
    made = []
    for _ in range(count):
        slug = f"q-{uuid.uuid4().hex[:10]}"
        agency = Agency.objects.create(slug=slug, schema_name=slug.replace("-", "_"), name=f"Agency {slug}")
        AgencyStats.objects.create(agency=agency, members=2, accounts=1, posts_by_state={"published": 1})
        made.append(agency)
    return made


def test_the_list_asks_as_many_queries_for_30_agencies_as_for_3(operator: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = operator.get(CONSOLE)
            assert response.status_code == 200
        return len(captured)

    _public_agencies(3)
    few = queries()
    _public_agencies(27)
    assert queries() == few


def test_the_list_is_paged_by_address(operator: Client) -> None:
    made = sorted(a.slug for a in _public_agencies(55))
    everyone = sorted([*made, "alpha", "beta"])
    first = operator.get(CONSOLE).content.decode()
    shown = re.findall(r'<tr data-slug="([^"]+)">', first)
    assert shown == everyone[:50]
    (next_link,) = re.findall(r'href="/operators/\?(after=[^"]+)" rel="next"', first)
    second = operator.get(f"{CONSOLE}?{next_link}").content.decode()
    assert re.findall(r'<tr data-slug="([^"]+)">', second) == everyone[50:]


def test_the_platform_panel(alpha: Agency, beta: Agency, operator: Client, broker_namespace: str) -> None:
    now = timezone.now()
    DueJob.objects.create(
        schema_name=alpha.schema_name, post_id=uuid.uuid4(), kind=JobKind.PUBLISH, due_at=now
    )
    DueJob.objects.create(
        schema_name=alpha.schema_name,
        post_id=uuid.uuid4(),
        kind=JobKind.PUBLISH,
        due_at=now + dt.timedelta(hours=1),
    )
    with schema_context(beta.schema_name):
        TikTokAccountFactory(refresh_expires_at=now + dt.timedelta(hours=3))
        TikTokAccountFactory()
    Agency.objects.filter(pk=beta.pk).update(status=AgencyStatus.SUSPENDED)
    broker: Any = dramatiq.get_broker()
    stale = list(broker.client.scan_iter(match=f"{broker_namespace}:lateness:*"))
    if stale:  # publishes of other tests of this run
        broker.client.delete(*stale)
    for seconds in [0.2] * 98 + [20, 200]:
        publish_lateness_observe(seconds)
    call_command("refresh_agency_stats")

    html = operator.get(CONSOLE).content.decode()

    def figure(name: str) -> str:
        match = re.search(rf'<td id="{name}">(.*?)</td>', html, re.S)
        assert match, name
        return match.group(1).strip()

    assert figure("due-posts") == "1"
    assert figure("tokens-expiring") == "1"
    assert figure("suspended") == "1"
    assert figure("pending-deletion") == "0"
    assert figure("lateness") == "&le; 30 s (100 posts)"  # the 99th of 100 was 20 s late
    assert re.fullmatch(r"\d+", figure("dead-letters"))
    assert re.search(r'<table id="queues">.*<td>publish</td>.*</table>', html, re.S), html


def test_nobody_but_an_operator_sees_the_console(alpha: Agency, operator: Client) -> None:
    assert operator.get(CONSOLE).status_code == 200
    assert b'href="/operators/"' in operator.get("/admin/").content
    assert client_for(None).get(CONSOLE).status_code == 404
    # A user of the public schema who is not staff.
    plain = client_for(None)
    plain.force_login(User.objects.create_user("someone@postline.example", OWNER_PASSWORD))
    assert plain.get(CONSOLE).status_code == 404
    assert (
        plain.post(f"{CONSOLE}agencies/{alpha.pk}/status/", {"action": "suspend", "reason": "x"}).status_code
        == 404
    )
    # Staff who did not give their second step are sent to it, as by the admin.
    unverified = client_for(None)
    unverified.force_login(User.objects.create_superuser("half@postline.example", OWNER_PASSWORD))
    assert unverified.get(CONSOLE).status_code == 302
    # The agency's own owner, on the agency's site: there is no console there.
    owner = client_for(alpha)
    owner.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    assert owner.get(CONSOLE).status_code == 404
    assert owner.get(f"{CONSOLE}agencies/{alpha.pk}/status/").status_code == 404
    assert Agency.objects.get(pk=alpha.pk).status == AgencyStatus.ACTIVE


def test_suspending_without_a_reason_is_refused_and_changes_nothing(
    alpha: Agency, operator: Client, committed: Any, smtp_server: SMTPServer
) -> None:
    with committed():
        response = operator.post(
            f"{CONSOLE}agencies/{alpha.pk}/status/", {"action": "suspend", "reason": "  "}
        )

    assert response.status_code == 200
    assert b"Give a reason: it is emailed to the agency&#x27;s owner" in response.content
    assert Agency.objects.get(pk=alpha.pk).status == AgencyStatus.ACTIVE
    assert not OperatorAuditLog.objects.exists()
    with schema_context(alpha.schema_name):
        assert not AuditLog.objects.filter(action="agency.suspended").exists()
    assert smtp_server.messages == []


def test_suspending_with_a_reason_tells_the_owner_and_both_logs(
    alpha: Agency, beta: Agency, operator: Client, committed: Any, smtp_server: SMTPServer
) -> None:
    reason = "Unpaid invoice INV-2026-118: pay it and we reactivate you at once."
    page = operator.get(f"{CONSOLE}agencies/{alpha.pk}/status/?action=suspend")
    assert page.status_code == 200 and b'name="reason"' in page.content

    with committed():
        response = operator.post(
            f"{CONSOLE}agencies/{alpha.pk}/status/", {"action": "suspend", "reason": reason}
        )

    assert response.status_code == 302
    assert Agency.objects.get(pk=alpha.pk).status == AgencyStatus.SUSPENDED
    (mail,) = smtp_server.to("owner@shared.example")
    assert mail_to(mail) == ["owner@shared.example"]
    assert mail["Subject"] == "Alpha Agency is suspended on Postline"
    assert reason in mail_text(mail)
    entry = OperatorAuditLog.objects.get()
    assert (entry.action, entry.agency_slug, entry.reason) == ("agency.suspended", "alpha", reason)
    assert entry.operator_email == "operator@postline.example"
    assert entry.changes == {"status": ["active", "suspended"]}
    with schema_context(alpha.schema_name):
        own = AuditLog.objects.get(action="agency.suspended")
        assert own.changes == {
            "status": ["active", "suspended"],
            "reason": reason,
            "operator": "operator@postline.example",
        }
    with schema_context(beta.schema_name):
        assert not AuditLog.objects.filter(action="agency.suspended").exists()

    # The operators' log cannot be rewritten or emptied, by the ORM or by SQL.
    with pytest.raises(DatabaseError, match="cannot be changed or removed"), transaction.atomic():
        OperatorAuditLog.objects.filter(pk=entry.pk).update(reason="Nothing happened")
    with pytest.raises(DatabaseError, match="cannot be changed or removed"), transaction.atomic():
        entry.delete()
    with (
        pytest.raises(DatabaseError, match="cannot be changed or removed"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the row's foreign keys are checked first
        cursor.execute("TRUNCATE operators_operatorauditlog")
    assert OperatorAuditLog.objects.get().reason == reason


def test_reactivating_and_deleting_take_a_reason_too(
    alpha: Agency, operator: Client, committed: Any, smtp_server: SMTPServer
) -> None:
    Agency.objects.filter(pk=alpha.pk).update(status=AgencyStatus.SUSPENDED)
    with committed():
        operator.post(f"{CONSOLE}agencies/{alpha.pk}/status/", {"action": "reactivate", "reason": "Paid."})
        refused = operator.post(f"{CONSOLE}agencies/{alpha.pk}/status/", {"action": "delete", "reason": ""})
    assert refused.status_code == 200
    assert Agency.objects.get(pk=alpha.pk).status == AgencyStatus.ACTIVE
    assert [e.action for e in OperatorAuditLog.objects.all()] == ["agency.reactivated"]
    (mail,) = smtp_server.to("owner@shared.example")
    assert mail["Subject"] == "Alpha Agency is active again on Postline" and "Paid." in mail_text(mail)


def test_the_admins_actions_ask_for_the_reason(
    alpha: Agency, beta: Agency, operator: Client, committed: Any, smtp_server: SMTPServer
) -> None:
    selected = {"action": "suspend", "_selected_action": [str(alpha.pk), str(beta.pk)]}
    asked = operator.post("/admin/tenants/agency/", selected)
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    assert Agency.objects.filter(status=AgencyStatus.ACTIVE, pk__in=[alpha.pk, beta.pk]).count() == 2

    empty = operator.post("/admin/tenants/agency/", {**selected, "reason_given": "yes", "reason": ""})
    assert empty.status_code == 200 and b"Give a reason" in empty.content
    assert Agency.objects.filter(status=AgencyStatus.ACTIVE, pk__in=[alpha.pk, beta.pk]).count() == 2

    with committed():
        done = operator.post(
            "/admin/tenants/agency/", {**selected, "reason_given": "yes", "reason": "Abuse report 77."}
        )
    assert done.status_code == 302
    assert Agency.objects.filter(status=AgencyStatus.SUSPENDED, pk__in=[alpha.pk, beta.pk]).count() == 2
    assert sorted(e.agency_slug for e in OperatorAuditLog.objects.all()) == ["alpha", "beta"]
    assert len(smtp_server.to("owner@shared.example")) == 2


def test_the_refresh_job_reads_each_agency_in_its_schema(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        _post(PostStatus.PUBLISHED, scheduled_at=timezone.now())
    stats = agency_stats_refresh(agency=alpha)
    assert stats.posts_by_state == {"published": 1} and stats.accounts == 1
    assert connection.schema_name == "public"


def test_the_scheduler_refreshes_every_agency_by_one_message_each(
    alpha: Agency, beta: Agency, jobs: Any
) -> None:
    from apps.common.scheduler import daily_jobs
    from apps.operators.tasks import operators_refresh_stats_all

    (job,) = [job for job in daily_jobs() if job.name == "agency-stats-refresh"]
    broker = dramatiq.get_broker()
    broker.flush("maintenance")
    try:
        operators_refresh_stats_all.fn()  # what the job's message runs
        assert jobs("maintenance") == 2  # one message per agency, each run in its schema
    finally:
        broker.flush("maintenance")
    assert set(AgencyStats.objects.values_list("agency__slug", flat=True)) == {"alpha", "beta"}
    assert job.seconds == 900
