"""The Team page, joining through an invitation and the audit log, in a real browser under the
strict CSP, at desktop and phone width: an owner invites a teammate, who joins from the emailed
link; the owner changes their role and access, then deactivates them; the owner reads and
exports the audit log in their time zone."""

from __future__ import annotations

import csv
import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from playwright.sync_api import expect

from apps.accounts.permissions import Perm, access_table
from apps.audit.models import AuditLog
from apps.team.services import invitation_send, member_change_role
from apps.users.models import Role, User
from tests.browser.conftest import DESKTOP, PHONE, Stack, sign_in, snap
from tests.conftest import OWNER_PASSWORD, mail_text, wait_for
from tests.factories import PostFactory, TikTokAccountFactory

OWNER = "owner@committed.example"
NINA = "nina@committed.example"
AUCKLAND = zoneinfo.ZoneInfo("Pacific/Auckland")


def fits_the_phone(page: Any) -> bool:
    """Nothing wider than a 375 px screen (no sideways scrolling)."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size(DESKTOP)
    return bool(width <= PHONE["width"])


@contextmanager
def another_browser(browser: Any) -> Iterator[Any]:
    """A page in a browser context of its own (its own cookies: nobody signed in)."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        context.close()


def test_an_owner_invites_a_teammate_who_joins_then_changes_and_deactivates_them(
    stack: Stack, make_agency: Any, page: Any, browser: Any, django_db_blocker: Any
) -> None:
    # Given an agency with two accounts, each with a post coming up
    agency = make_agency()
    suffix = uuid.uuid4().hex[:8]
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        luna = TikTokAccountFactory(username="luna.bakes", open_id=f"luna-{suffix}")
        theo = TikTokAccountFactory(username="theo.workshop", open_id=f"theo-{suffix}")
        PostFactory(account=luna, caption="Sourdough launch day")
        PostFactory(account=theo, caption="Walnut stool reveal")
    connection.set_schema_to_public()

    # When the owner invites Nina as an editor on @luna.bakes only
    sign_in(page, stack, agency)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Team", exact=True).is_visible()
    page.get_by_label("Email").fill(NINA)
    page.get_by_label("Role").select_option(label="Editor")
    page.get_by_role("checkbox", name="@luna.bakes").check()
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_load_state()

    # Then they are told, and the invitation waits for an answer
    assert page.get_by_text(f"Invitation sent to {NINA} as Editor.").is_visible()
    pending = page.get_by_role("table", name="Pending invitations").get_by_role("row").filter(has_text=NINA)
    assert pending.get_by_role("cell", name="Editor", exact=True).is_visible()
    assert pending.get_by_role("cell", name="@luna.bakes", exact=True).is_visible()
    assert fits_the_phone(page)
    snap(page, "team")

    # And the worker sent the email with the link
    (sent,) = wait_for(lambda: stack.emails_to(NINA))
    assert sent["Subject"].endswith("invited you to Committed Agency on Postline")
    link = re.search(r"http://\S+/team/join/\S+/", mail_text(sent))
    assert link is not None, mail_text(sent)
    assert link.group().startswith(stack.url(agency, "/team/join/"))

    with another_browser(browser) as nina:
        # When Nina opens the link, signed out, and picks a password that is too short
        nina.goto(link.group())
        assert nina.get_by_role("heading", name="Join Committed Agency").is_visible()
        facts = nina.get_by_role("definition")
        assert facts.filter(has_text=NINA).is_visible()
        assert facts.filter(has_text="Editor").inner_text() == "Editor (View, Draft)"
        nina.get_by_label("Your name").fill("Nina Park")
        nina.get_by_label("Choose a password").fill("short")
        nina.get_by_label("Repeat the password").fill("short")
        nina.get_by_role("button", name="Join Committed Agency").click()
        nina.wait_for_load_state()

        # Then the error is next to the password, and her name is kept
        password = nina.get_by_label("Choose a password")
        assert password.get_attribute("aria-invalid") == "true"
        error = nina.locator("#id_password_error")
        assert "too short" in error.inner_text()
        assert error.get_attribute("id") in (password.get_attribute("aria-describedby") or "")
        assert nina.get_by_label("Your name").input_value() == "Nina Park"
        assert fits_the_phone(nina)
        snap(nina, "team-join")

        # When she picks a good one, she is in, and sees only @luna.bakes's posts
        nina.get_by_label("Choose a password").fill(OWNER_PASSWORD)
        nina.get_by_label("Repeat the password").fill(OWNER_PASSWORD)
        nina.get_by_role("button", name="Join Committed Agency").click()
        nina.wait_for_load_state()
        assert nina.url == stack.url(agency, "/")
        assert nina.get_by_text("Welcome to Committed Agency, Nina! You joined as Editor.").is_visible()
        assert nina.get_by_text("Sourdough launch day").is_visible()
        assert nina.get_by_text("Walnut stool reveal").count() == 0
        assert nina.console_errors == []

        # When the owner opens Nina's page from the team
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
        page.wait_for_load_state()
        assert page.get_by_text("No invitation is waiting for an answer.").is_visible()
        page.get_by_role("link", name="Nina Park").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Nina Park").is_visible()

        # And makes her a manager
        page.get_by_role("combobox", name="Role").select_option(label="Manager")
        page.get_by_role("button", name="Change role").click()
        page.wait_for_load_state()
        assert page.get_by_text(f"{NINA} is now Manager (was Editor).").is_visible()
        approve_luna = page.get_by_role("checkbox", name="Approve on @luna.bakes")
        assert approve_luna.is_checked()  # a manager's defaults, on the account she has

        # And takes away approving on @luna.bakes, and lets her see @theo.workshop
        approve_luna.uncheck()
        page.get_by_role("checkbox", name="View on @theo.workshop").check()
        page.get_by_role("button", name="Save access").click()
        page.wait_for_load_state()
        assert page.get_by_text(f"Saved {NINA}'s access: 2 accounts changed.").is_visible()
        assert not page.get_by_role("checkbox", name="Approve on @luna.bakes").is_checked()
        assert page.get_by_role("checkbox", name="Draft on @luna.bakes").is_checked()
        assert page.get_by_role("checkbox", name="View on @theo.workshop").is_checked()
        assert not page.get_by_role("checkbox", name="Draft on @theo.workshop").is_checked()
        assert fits_the_phone(page)
        snap(page, "team-member")
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            held = access_table(User.objects.get(email=NINA))
            assert held == {luna.pk: {Perm.VIEW, Perm.DRAFT, Perm.PUBLISH, Perm.MANAGE}, theo.pk: {Perm.VIEW}}
        connection.set_schema_to_public()

        # Then Nina, on her next page, sees @theo.workshop's post too
        nina.reload()
        assert nina.get_by_text("Walnut stool reveal").is_visible()

        # When the owner deactivates her
        page.get_by_role("button", name=f"Deactivate {NINA}").click()
        page.wait_for_load_state()
        # (asked first, with what will happen)
        assert page.get_by_role("heading", name=f"Deactivate {NINA}?").is_visible()
        snap(page, "team-deactivate-confirm")
        page.get_by_role("button", name=f"Deactivate {NINA}").click()
        page.wait_for_load_state()
        assert page.get_by_text(f"Deactivated {NINA}: they were signed out").is_visible()
        assert page.get_by_role("table", name="Active members").get_by_text("Nina Park").count() == 0
        assert page.get_by_role("listitem").filter(has_text="Nina Park").is_visible()

        # Then Nina's next navigation lands on the sign-in page
        nina.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
        nina.wait_for_load_state()
        assert nina.url.startswith(stack.url(agency, "/login/"))
        assert nina.get_by_role("button", name="Sign in").is_visible()
        assert nina.console_errors == []
    assert page.console_errors == []


def test_an_owner_filters_and_exports_the_audit_log_in_their_time_zone(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    # Given an owner in Auckland, role changes today, just before today and last week, and an invitation
    agency = make_agency()
    today = timezone.now().astimezone(AUCKLAND).date()
    midnight = dt.datetime.combine(today, dt.time.min, tzinfo=AUCKLAND)
    with django_db_blocker.unblock(), tenant_context(agency):
        User.objects.filter(email=OWNER).update(time_zone="Pacific/Auckland")
        owner = User.objects.get(email=OWNER)
        eda = User.objects.create_user("eda@committed.example", OWNER_PASSWORD, role=Role.EDITOR, name="Eda")
        invitation_send(email=NINA, role=Role.VIEWER, accounts=[], by=owner)
        member_change_role(member=eda, role=Role.MANAGER, by=owner)
        for when, old, new in (
            (midnight + dt.timedelta(seconds=30), Role.VIEWER, Role.EDITOR),
            (midnight - dt.timedelta(seconds=30), Role.CLIENT, Role.VIEWER),
            (midnight - dt.timedelta(days=7), Role.VIEWER, Role.CLIENT),
        ):
            AuditLog.objects.create(
                created_at=when,
                action="member.role_changed",
                actor=owner,
                actor_email=OWNER,
                object_type="users.user",
                object_id=str(eda.pk),
                object_repr=str(eda),
                changes={"email": eda.email, "role": {"old": old, "new": new}},
            )
        expected = list(
            AuditLog.objects.filter(action="member.role_changed", created_at__gte=midnight).order_by(
                "-created_at"
            )
        )
        assert len(expected) == 2
    connection.set_schema_to_public()

    # When the owner filters the log to today's role changes
    sign_in(page, stack, agency)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Audit log").is_visible()
    page.get_by_label("Action").select_option(label="Member role changed")
    page.get_by_label("From").fill(today.isoformat())
    page.get_by_label("To").fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()

    # Then they see those two, at Auckland times
    expect(
        page.get_by_text("Entries that match these filters, newest first. Times in Pacific/Auckland.")
    ).to_be_visible()
    # (each entry's row; its changes are a row of their own under it)
    rows = page.locator(".audit-table tbody tr:not(.changes-row)")
    assert rows.count() == 2
    for row, entry in zip(rows.all(), expected, strict=True):
        local = entry.created_at.astimezone(AUCKLAND)
        assert row.get_by_role("cell").first.inner_text() == f"{local.day} {local:%b %Y, %H:%M:%S}"
        assert row.get_by_text("Member role changed").is_visible()
    assert page.get_by_role("table").get_by_text("Invitation sent").count() == 0
    assert "action=member.role_changed" in page.url  # the filters are in the address
    assert fits_the_phone(page)
    snap(page, "audit")

    # When they export these entries, the CSV holds the same two, in UTC
    with page.expect_download() as download:
        page.get_by_role("link", name="Export these entries as CSV").click()
    assert download.value.suggested_filename == f"audit-{agency.slug}-{today:%Y-%m-%d}.csv"
    with open(download.value.path(), newline="", encoding="utf-8") as exported:
        lines = list(csv.DictReader(exported))
    assert [(line["time (UTC)"], line["action"]) for line in lines] == [
        (entry.created_at.astimezone(dt.UTC).isoformat(), "member.role_changed") for entry in expected
    ]
    assert page.console_errors == []
