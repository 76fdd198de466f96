"""Self-service signups confirm the owner's email address before they can connect TikTok accounts
or publish; abandoned unconfirmed signups are removed by a scheduled job."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import TikTokAccount
from apps.audit.models import AuditLog
from apps.common.log_redaction import redact
from apps.common.scheduler import daily_jobs
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.posts.services import PostStateError, post_retry, post_schedule
from apps.publishing.models import DueJob
from apps.publishing.services import post_publish
from apps.users.models import Role
from apps.web.email_verification import removal_due
from tenants.models import Agency, AgencyStatus
from tenants.services import agency_create
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, operator_client
from tests.factories import PostFactory, UserFactory, ready_post
from tests.test_publishing import claim
from tests.tiktok_flow import consent, finish, land, start_connect

pytestmark = pytest.mark.django_db

SIGNUP = {
    "name": "Gamma Studio",
    "slug": "gamma",
    "owner_name": "Gina Gamma",
    "owner_email": "gina@gamma.example",
    "owner_password": "a-brand-new-password-7",
}
BLOCKED = "Gamma Studio cannot connect TikTok accounts or publish until its owner confirms their email"
_LINK = re.compile(r"https?://\S+/verify-email/\S+/")


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any, jobs: Any) -> Any:
    """Run what a block commits (pytest-django's capture) and the web jobs it queued, here."""

    @contextmanager
    def block() -> Iterator[None]:
        with django_capture_on_commit_callbacks(execute=True):
            yield
        jobs("web")

    return block


def links(smtp: SMTPServer, address: str = "gina@gamma.example") -> list[str]:
    found = []
    for message in smtp.to(address):
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found += _LINK.findall(body.get_content())
    return found


def path_of(link: str) -> str:
    return urlsplit(link).path


def signed_up(committed: Any) -> tuple[Agency, Client]:
    """Sign up Gamma Studio and follow the welcome link: the owner, signed in on the new agency."""
    with committed():
        response = client_for(None).post("/signup/", SIGNUP)
    assert response.status_code == 302, response.content[:2000]
    agency = Agency.objects.get(slug="gamma")
    client = client_for(agency)
    client.post(urlsplit(response["Location"]).path)
    assert client.get("/").status_code == 200
    return agency, client


def unconfirmed(agency: Agency) -> Agency:
    Agency.objects.filter(pk=agency.pk).update(email_verified_at=None)
    return Agency.objects.get(pk=agency.pk)


def signed_in(agency: Agency, email: str = "owner@shared.example") -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


# --- Signup, the email, the link ---


def test_signup_emails_a_link_whose_click_lets_the_agency_connect_accounts(
    committed: Any, smtp_server: SMTPServer, tiktok: FakeTikTok
) -> None:
    # Given someone signs up: the worker sends the confirmation email over SMTP
    agency, owner = signed_up(committed)
    assert agency.email_verified_at is None
    (mail,) = smtp_server.to("gina@gamma.example")
    assert mail["Subject"] == "Confirm your email address for Gamma Studio on Postline"
    (link,) = links(smtp_server)
    assert link.startswith(agency.url)

    # Then until it is followed, every page says why nothing can be connected, and connecting is refused
    page = owner.get("/accounts/").content.decode()
    assert "Confirm your email address." in page and "cannot connect TikTok accounts or publish" in page
    assert 'action="/accounts/connect/"' not in page
    refused = owner.post("/accounts/connect/", follow=True)
    assert refused.redirect_chain == [("/verify-email/", 302)]
    assert BLOCKED in refused.content.decode()
    assert "Send a new link to gina@gamma.example" in refused.content.decode()
    assert not [c for c in tiktok.calls if c["endpoint"] == "authorize"]

    # When the owner opens the link, in a browser signed in nowhere: it asks first
    browser = client_for(agency)
    asked = browser.get(path_of(link))
    assert asked.status_code == 200 and "Confirm gina@gamma.example" in asked.content.decode()
    assert Agency.objects.get(pk=agency.pk).email_verified_at is None

    # And clicks
    done = browser.post(path_of(link), follow=True)

    # Then the agency is confirmed, audited with the address, and connecting goes to TikTok
    assert "Your email address is confirmed" in done.content.decode()
    agency = Agency.objects.get(pk=agency.pk)
    assert agency.email_verified_at is not None
    with schema_context(agency.schema_name):
        entry = AuditLog.objects.get(action="agency.email_verified")
        assert entry.changes == {"email": "gina@gamma.example"} and entry.actor_email == "gina@gamma.example"
        assert entry.ip == "127.0.0.1"
        sent = AuditLog.objects.get(action="agency.email_verification_sent")
        assert sent.changes == {"to": "gina@gamma.example"}
    assert "Confirm your email address." not in owner.get("/accounts/").content.decode()
    assert start_connect(owner).startswith(tiktok.base_url)

    # And the link does nothing more
    again = client_for(agency).post(path_of(link))
    assert again.status_code == 200 and "confirmed already" in again.content.decode()
    assert Agency.objects.get(pk=agency.pk).email_verified_at == agency.email_verified_at


def test_send_it_again_voids_the_earlier_link_and_is_throttled(
    committed: Any, smtp_server: SMTPServer
) -> None:
    agency, owner = signed_up(committed)
    (first,) = links(smtp_server)

    # When the owner asks for a new link
    with committed():
        sent = owner.post("/verify-email/send/", follow=True)
    assert "We are sending a new link to gina@gamma.example" in sent.content.decode()
    second = links(smtp_server)[1]
    assert second != first

    # Then the first one no longer confirms anything; the second does
    stale = client_for(agency).post(path_of(first))
    assert stale.status_code == 400 and "A newer confirmation link was sent" in stale.content.decode()
    assert Agency.objects.get(pk=agency.pk).email_verified_at is None

    # And after three requests for the address within the hour, the next one is refused
    with committed():
        owner.post("/verify-email/send/")
        owner.post("/verify-email/send/")
        refused = owner.post("/verify-email/send/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many confirmation emails for this address" in refused.content.decode()
    assert len(links(smtp_server)) == 4  # signup's and three, not the refused one

    assert client_for(agency).post(path_of(links(smtp_server)[-1])).status_code == 302
    assert Agency.objects.get(pk=agency.pk).is_email_verified


def test_links_that_cannot_confirm_say_why_and_change_nothing(
    committed: Any, smtp_server: SMTPServer, alpha: Agency, settings: Any
) -> None:
    agency, _ = signed_up(committed)
    (link,) = links(smtp_server)
    path = path_of(link)
    token = path.split("/")[2]

    cases = [
        (client_for(alpha), path, "This confirmation link belongs to another agency."),
        (client_for(agency), path.replace(token, token[:-3] + "abc"), "This confirmation link is not valid."),
        (client_for(agency), "/verify-email/not-a-token/", "This confirmation link is not valid."),
    ]
    for client, where, message in cases:
        for response in (client.get(where), client.post(where)):
            assert response.status_code == 400 and message in response.content.decode()

    settings.EMAIL_VERIFICATION_LINK_HOURS = 0  # the link's time is up
    expired = client_for(agency).post(path)
    assert expired.status_code == 400 and "This confirmation link has expired" in expired.content.decode()
    assert Agency.objects.get(pk=agency.pk).email_verified_at is None
    assert Agency.objects.get(pk=alpha.pk).email_verified_at is not None


def test_only_an_owner_may_have_the_link_sent_again(committed: Any, smtp_server: SMTPServer) -> None:
    agency, _ = signed_up(committed)
    connection.set_schema(agency.schema_name)
    UserFactory(email="ed@gamma.example", role=Role.EDITOR)
    connection.set_schema_to_public()
    editor = signed_in(agency, "ed@gamma.example")

    dashboard = editor.get("/").content.decode()
    assert "Until an owner follows the link we emailed, Gamma Studio cannot connect" in dashboard
    page = editor.get("/verify-email/").content.decode()
    assert "Only an owner can have the link sent again" in page and "Send a new link" not in page
    with committed():
        assert editor.post("/verify-email/send/").status_code == 404
    assert len(links(smtp_server)) == 1


def test_agencies_made_by_operators_and_the_tests_are_confirmed(alpha: Agency) -> None:
    assert alpha.is_email_verified
    page = signed_in(alpha).get("/accounts/").content.decode()
    assert "Confirm your email address." not in page and 'action="/accounts/connect/"' in page


def test_an_operator_can_confirm_an_owner_who_gets_no_email(alpha: Agency) -> None:
    unconfirmed(alpha)
    response = operator_client().post(
        "/admin/tenants/agency/",
        {"action": "confirm_email", "_selected_action": [str(alpha.pk)]},
        follow=True,
    )
    assert "Confirmed the owner&#x27;s address of 1 agency(ies)" in response.content.decode()
    assert Agency.objects.get(pk=alpha.pk).is_email_verified
    with schema_context(alpha.schema_name):
        entry = AuditLog.objects.get(action="agency.email_verified")
        assert entry.changes == {"operator": "operator@postline.example"}
    assert 'action="/accounts/connect/"' in signed_in(alpha).get("/accounts/").content.decode()


def test_confirmation_links_stay_out_of_the_logs() -> None:
    line = '"POST /verify-email/eyJhIjo1LCJ1IjoiYiJ9:1vQ:abc/ HTTP/1.1" 302 and /verify-email/send/'
    assert redact(line) == '"POST /verify-email/[redacted]/ HTTP/1.1" 302 and /verify-email/send/'


# --- The gate, server-side ---


def test_a_connection_started_before_is_not_finished_by_an_unconfirmed_agency(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    # Given the owner started a connection and consented at TikTok
    owner = signed_in(alpha)
    location = finish(consent(start_connect(owner), creator="fake-open-public-001"))[1]

    # When the agency is (no longer) confirmed as the browser comes back
    unconfirmed(alpha)
    page = land(owner, location, status=400)

    # Then nothing is exchanged or stored, and the page says why
    assert "Nothing was connected. Alpha Agency cannot connect TikTok accounts or publish" in page
    assert not [c for c in tiktok.calls if c["endpoint"] == "token"]
    connection.set_schema(alpha.schema_name)
    assert not TikTokAccount.all_objects.exists()


def test_an_unconfirmed_agency_cannot_schedule_retry_or_publish(
    in_alpha: Agency, alpha: Agency, tiktok: FakeTikTok
) -> None:
    # Given a post a worker was handed while the agency was confirmed, and other posts
    draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    claimed = claim(post_schedule(post=draft, scheduled_at=timezone.now(), time_zone="UTC", by=None))
    draft = PostFactory(status=PostStatus.DRAFT, scheduled_at=None, account=claimed.account)
    failed = PostFactory(status=PostStatus.FAILED, account=claimed.account)

    # When the agency's owner address is not confirmed
    unconfirmed(alpha)
    connection.set_schema(alpha.schema_name)

    # Then scheduling and retrying are refused with the reason, and nothing gets a publish job
    for attempt in (
        lambda: post_schedule(
            post=draft, scheduled_at=timezone.now() + dt.timedelta(hours=1), time_zone="UTC", by=None
        ),
        lambda: post_retry(post=failed, by=None),
    ):
        with pytest.raises(PostStateError, match="cannot connect TikTok accounts or publish until"):
            attempt()
    assert Post.objects.get(pk=draft.pk).status == PostStatus.DRAFT
    assert Post.objects.get(pk=failed.pk).status == PostStatus.FAILED
    assert not DueJob.objects.filter(post_id__in=[draft.pk, failed.pk]).exists()

    # And a post a worker holds fails without reaching TikTok
    post_publish(post_id=str(claimed.pk))
    claimed = Post.objects.get(pk=claimed.pk)
    assert claimed.status == PostStatus.FAILED and claimed.last_error_code == "agency_email_unverified"
    assert tiktok.create_post_calls() == []


# --- Removing abandoned signups ---


def test_the_scheduler_reminds_then_removes_agencies_left_unconfirmed(
    alpha: Agency, jobs: Any, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given unconfirmed signups of various ages, and a confirmed agency 8 days old
    now = timezone.now()
    ages = {  # slug: (days since signup, days since the last email, or None: none sent)
        "stale": (8, None),
        "asked-again": (8, 1),
        "nearly": (6, 6),
        "fresh": (2, 2),
        "kept": (8, None),
    }
    made = {}
    for slug, (age, emailed) in ages.items():
        made[slug] = agency_create(
            slug=slug,
            name=slug.title(),
            owner_email=f"o@{slug}.example",
            owner_password=OWNER_PASSWORD,
            email_verified=slug == "kept",
        )
        Agency.objects.filter(slug=slug).update(
            created_at=now - dt.timedelta(days=age),
            email_verification_sent_at=None if emailed is None else now - dt.timedelta(days=emailed),
        )
    connection.set_schema_to_public()
    (job,) = [job for job in daily_jobs() if job.name == "unverified-agencies-remove"]

    # When the scheduler's job runs
    with caplog.at_level(logging.WARNING, logger="apps.web.email_verification"):
        job.send()
        assert jobs("web") == 1

    # Then only the signup past its time is gone, schema and address, and the log says why
    assert not Agency.objects.filter(slug="stale").exists()
    assert not schema_exists(made["stale"].schema_name)
    assert set(Agency.objects.filter(slug__in=made).values_list("slug", flat=True)) == set(ages) - {"stale"}
    assert "Removed agency stale" in caplog.text and "never confirmed their email address" in caplog.text
    assert Agency.objects.get(pk=alpha.pk).status == AgencyStatus.ACTIVE

    # And the one whose removal comes next got a reminder with a new link that works, saying when
    nearly = Agency.objects.get(slug="nearly")
    (reminder,) = smtp_server.messages
    assert reminder["To"] == "o@nearly.example"
    remove_on = removal_due(nearly)
    assert remove_on >= now + dt.timedelta(days=2)
    assert reminder["Subject"] == (
        f"Reminder: confirm your email address for Nearly on Postline, or it is removed on {remove_on:%-d %B}"
    )
    (link,) = links(smtp_server, "o@nearly.example")

    # And running again reminds nobody twice and removes nothing more
    job.send()
    jobs("web")
    assert len(smtp_server.messages) == 1
    assert Agency.objects.filter(slug__in=made).count() == 4
    assert client_for(nearly).post(path_of(link)).status_code == 302
    assert Agency.objects.get(slug="nearly").is_email_verified
