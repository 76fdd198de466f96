"""The audit log page: owners and admins filter the log and export what they filtered as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.analytics.models import AccountSnapshot
from apps.audit.models import AuditLog
from apps.audit.services import audit_record
from apps.posts.models import Post
from apps.users.models import Role, User
from tenants.models import Agency, Domain
from tests.conftest import OWNER_PASSWORD, client_for, operator_client
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"


def signed_in(agency: Agency, email: str = OWNER) -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, response.content[:2000]
    return client


def entry(action: str, **fields: Any) -> AuditLog:
    """An entry as the services write it, with a chosen time when the test needs one."""
    return AuditLog.objects.create(action=action, **fields)


def export_rows(response: Any) -> list[dict[str, str]]:
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_owner_reads_what_happened_newest_first(alpha: Agency) -> None:
    # Given a settings change made through the page, and an account the system marked for reauthorisation
    client = signed_in(alpha)
    client.post("/settings/", {"name": "Alpha Studio", "default_time_zone": "UTC"})
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="clientbrand")
        audit_record(
            action="account.needs_reauth", obj=account, changes={"status": ["active", "needs_reauth"]}
        )

    page = client.get("/audit/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Audit log</h1>" in html
    table = html.split("<tbody>")[1]
    # newest first: the system's entry, then the settings change, then the sign-in
    newest_first = ["Account needs reauthorisation", "Settings changed", "Signed in"]
    positions = [table.index(label) for label in newest_first]
    assert positions == sorted(positions)
    assert "<dt>name</dt><dd>Alpha Agency → Alpha Studio</dd>" in html
    assert "<dt>status</dt><dd>Active → Needs reconnecting</dd>" in html  # words, not codes
    assert "<td>@clientbrand</td>" in html  # the account column
    assert f'<span class="address">{OWNER}</span>' in html and '<span class="address">System</span>' in html
    assert 'href="/audit/export.csv"' in html


def test_the_page_links_to_posts_that_still_exist(in_alpha: Agency) -> None:
    kept, removed = PostFactory(caption="Still here"), PostFactory(caption="Gone now")
    audit_record(action="post.created", obj=kept)
    audit_record(action="post.created", obj=removed)
    removed.delete()

    html = signed_in(in_alpha).get("/audit/").content.decode()

    assert f'<a href="/posts/{kept.pk}/">Still here</a>' in html
    assert "Gone now" in html and f'href="/posts/{removed.pk}/"' not in html


def test_filter_by_actor_including_deactivated_people_and_the_system(in_alpha: Agency) -> None:
    editor = UserFactory(email="editor@alpha.example")
    gone = UserFactory(email="gone@alpha.example")
    entry("post.created", actor=editor, actor_email=editor.email, object_repr="by-the-editor")
    entry("post.created", actor=gone, actor_email=gone.email, object_repr="by-the-gone-one")
    entry("post.published", object_repr="by-the-system")
    gone.delete()
    client = signed_in(in_alpha)

    page = client.get("/audit/").content.decode()
    assert "gone@alpha.example (deactivated)" in page  # still a choice

    by_gone = client.get("/audit/", {"actor": str(gone.pk)}).content.decode()
    assert "by-the-gone-one" in by_gone
    assert "by-the-editor" not in by_gone and "by-the-system" not in by_gone
    by_system = client.get("/audit/", {"actor": "system"}).content.decode()
    assert "by-the-system" in by_system and "by-the-editor" not in by_system


def test_filter_by_action_offers_the_actions_present(in_alpha: Agency) -> None:
    entry("post.cancelled", object_repr="a-cancelled-post")
    entry("post.published", object_repr="a-published-post")
    client = signed_in(in_alpha)

    page = client.get("/audit/").content.decode()
    assert '<option value="post.cancelled">Post cancelled</option>' in page
    assert '<option value="account.disconnected">' not in page  # nothing of it in the log

    html = client.get("/audit/", {"action": "post.cancelled"}).content.decode()
    assert "a-cancelled-post" in html and "a-published-post" not in html


def test_filter_by_account_including_removed_accounts(in_alpha: Agency) -> None:
    kept = TikTokAccountFactory(username="keptbrand")
    removed = TikTokAccountFactory(username="oldbrand")
    audit_record(action="account.connected", obj=kept)
    audit_record(action="post.created", obj=PostFactory(account=removed, caption="old brand post"))
    removed.delete()
    client = signed_in(in_alpha)

    page = client.get("/audit/").content.decode()
    assert f'<option value="{removed.pk}">@oldbrand (removed)</option>' in page

    html = client.get("/audit/", {"account": str(removed.pk)}).content.decode()
    assert "old brand post" in html and "@keptbrand" not in html.split("<tbody>")[1]


def test_date_range_is_whole_days_in_the_viewers_time_zone(in_alpha: Agency) -> None:
    # Given a viewer in Auckland (UTC+13 in March): 2 March there runs from 1 March 11:00 UTC
    User.objects.filter(email=OWNER).update(time_zone="Pacific/Auckland")
    for label, day, hour, minute in [
        ("late-on-the-first", 1, 10, 59),
        ("early-on-the-second", 1, 11, 0),
        ("late-on-the-second", 2, 10, 59),
        ("early-on-the-third", 2, 11, 0),
    ]:
        at = dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)
        entry("post.created", object_repr=label, created_at=at)
    client = signed_in(in_alpha)

    html = client.get("/audit/", {"date_from": "2026-03-02", "date_to": "2026-03-02"}).content.decode()

    assert "early-on-the-second" in html and "late-on-the-second" in html
    assert "late-on-the-first" not in html and "early-on-the-third" not in html
    assert "2 Mar 2026, 00:00:00" in html  # shown in the viewer's time zone too
    assert "Times in Pacific/Auckland" in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"date_from": "yesterday"}, "date_from", "Enter the date as YYYY-MM-DD"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "date_to", "The end date is before the start"),
        ({"actor": "7f0c2d4e-8a7b-4c1e-9d3f-2b6a5e4c3d21"}, "actor", "No such person in this agency."),
        ({"account": "not-an-id"}, "account", "No such TikTok account in this agency."),
        ({"action": "post.teleported"}, "action", "No entry in the log has this action."),
    ],
    ids=["bad date", "from after to", "unknown person", "unknown account", "unknown action"],
)
def test_bad_filters_say_why_and_show_no_entries(
    in_alpha: Agency, query: dict[str, str], field: str, message: str
) -> None:
    entry("post.created", object_repr="an-entry-that-must-not-show")
    client = signed_in(in_alpha)

    html = client.get("/audit/", query).content.decode()

    assert f'<p class="field-error" id="id_{field}_error">{message}' in html
    assert "an-entry-that-must-not-show" not in html
    export = client.get("/audit/export.csv", query)
    assert export.status_code == 400 and not export.streaming
    assert message in export.content.decode()
    assert not AuditLog.objects.filter(action="audit.exported").exists()


def test_pages_of_fifty_in_a_constant_number_of_queries(in_alpha: Agency) -> None:
    client = signed_in(in_alpha)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/audit/").status_code == 200
        return len(captured)

    for _ in range(3):
        audit_record(action="post.created", obj=PostFactory())
    few = queries()
    for _ in range(60):
        audit_record(action="post.created", obj=PostFactory())
    assert queries() == few
    html = client.get("/audit/").content.decode()
    assert html.count("<tr>") == 1 + 50  # the head and a full page
    older = re.search(r'<a href="([^"]+)" rel="next"', html)
    assert older is not None and "page=" not in older.group(1)
    second = client.get(unescape(older.group(1))).content.decode()
    assert second.count("<tr>") == 1 + AuditLog.objects.count() - 50
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_the_filters_come_back_as_a_fragment_for_htmx(in_alpha: Agency) -> None:
    entry("post.created", object_repr="an-entry")
    response = signed_in(in_alpha).get("/audit/", {"action": "post.created"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="audit-log">')
    assert "an-entry" in html and "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_csv_export_has_exactly_the_filtered_rows_and_is_audited(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(username="clientbrand")
    post = PostFactory(account=account, caption='=HYPERLINK("http://evil.example")')
    request_entry = audit_record(action="post.created", obj=post, changes={"caption": post.caption})
    audit_record(action="post.cancelled", obj=post)
    audit_record(action="account.connected", obj=TikTokAccountFactory(username="otherbrand"))
    client = signed_in(in_alpha)

    response = client.get("/audit/export.csv", {"account": str(account.pk)})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = dt.datetime.now(dt.UTC).date()
    assert response["Content-Disposition"] == f'attachment; filename="audit-alpha-{today:%Y-%m-%d}.csv"'
    rows = export_rows(response)
    assert [row["action"] for row in rows] == ["post.cancelled", "post.created"]
    created = rows[1]
    assert created["time (UTC)"] == request_entry.created_at.astimezone(dt.UTC).isoformat()
    assert created["object type"] == "posts.post" and created["object id"] == str(post.pk)
    assert created["account"] == "'@clientbrand"  # a leading @ is escaped too
    assert created["object"] == '\'=HYPERLINK("http://evil.example")'  # not a formula in a spreadsheet
    assert created["changes"] == 'caption: =HYPERLINK("http://evil.example")'  # after its key, harmless
    assert json.loads(created["changes (JSON)"]) == {"caption": post.caption}  # exact, for tools
    exported = AuditLog.objects.get(action="audit.exported")
    assert exported.actor_email == OWNER
    assert exported.changes == {"filters": {"account": "@clientbrand"}}


def test_csv_export_without_filters_has_every_entry_not_one_page(in_alpha: Agency) -> None:
    for number in range(60):
        entry("post.created", object_repr=f"post {number}")
    entry("login.failed", object_repr="-2+3", user_agent="@SUM(A1)", ip="198.51.100.7")
    client = signed_in(in_alpha)

    rows = export_rows(client.get("/audit/export.csv"))

    # with the agency's creation and the owner's sign-in; the export's own entry is not in it
    assert len(rows) == 60 + 3
    failed = next(row for row in rows if row["action"] == "login.failed")
    assert failed["object"] == "'-2+3" and failed["user agent"] == "'@SUM(A1)"
    assert failed["actor email"] == "" and failed["IP"] == "198.51.100.7"


def test_csv_is_read_from_the_agencys_schema_whatever_the_connection_does_meanwhile(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        entry("post.created", object_repr="alpha's post")
    response = signed_in(alpha).get("/audit/export.csv")

    connection.set_schema_to_public()  # the body streams after the view has returned
    rows = export_rows(response)

    assert "alpha's post" in [row["object"] for row in rows]


@pytest.mark.parametrize("url", ["/audit/", "/audit/export.csv"])
def test_an_admin_may_read_the_log(alpha: Agency, url: str) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("admin@alpha.example", OWNER_PASSWORD, role=Role.ADMIN)
    assert signed_in(alpha, "admin@alpha.example").get(url).status_code == 200


@pytest.mark.parametrize("role", [Role.MANAGER, Role.EDITOR, Role.VIEWER, Role.CLIENT])
def test_other_roles_get_not_found(alpha: Agency, role: str) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("member@alpha.example", OWNER_PASSWORD, role=role)
    client = signed_in(alpha, "member@alpha.example")

    assert client.get("/audit/").status_code == 404
    assert client.get("/audit/export.csv").status_code == 404
    assert b'href="/audit/"' not in client.get("/").content
    with schema_context(alpha.schema_name):
        assert not AuditLog.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize("url", ["/audit/", "/audit/export.csv"])
def test_signed_out_visitors_are_sent_to_sign_in(alpha: Agency, url: str) -> None:
    response = client_for(alpha).get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_one_agencys_log_is_not_anothers(alpha: Agency, beta: Agency) -> None:
    with schema_context(beta.schema_name):
        entry("post.created", object_repr="beta's secret post")
    assert "beta's secret post" not in signed_in(alpha).get("/audit/").content.decode()
    rows = export_rows(signed_in(alpha).get("/audit/export.csv"))
    assert all(row["object"] != "beta's secret post" for row in rows)


# --- What the agency admin and the operators' admin write in the log ---


def test_adding_and_changing_in_the_agency_admin_is_audited(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="clientbrand")
    client = signed_in(alpha)
    snapshot = {
        "account": str(account.pk),
        "date": "2026-03-01",
        **dict.fromkeys(["followers", "following", "likes", "videos", "views", "comments", "shares"], "10"),
        "follower_growth": "0",
        "engagement_rate": "0",
    }

    added = client.post("/admin/analytics/accountsnapshot/add/", snapshot, REMOTE_ADDR="203.0.113.5")
    assert added.status_code == 302, added.content[:3000]
    with schema_context(alpha.schema_name):
        made = AccountSnapshot.objects.get(account=account)
    changed = client.post(
        f"/admin/analytics/accountsnapshot/{made.pk}/change/",
        {**snapshot, "followers": "99"},
        REMOTE_ADDR="203.0.113.7",
    )
    assert changed.status_code == 302, changed.content[:3000]

    with schema_context(alpha.schema_name):
        entries = {e.action: e for e in AuditLog.objects.filter(action__startswith="admin.")}
        assert set(entries) == {"admin.added", "admin.changed"}
        assert entries["admin.added"].changes == {"admin_message": "Added."}
        assert entries["admin.changed"].changes == {"admin_message": "Changed Followers."}
        for entry in entries.values():
            assert entry.actor_email == OWNER
            assert entry.object_type == "analytics.accountsnapshot" and entry.object_id == str(made.pk)
            assert entry.account_id == account.pk  # so the account filter finds it
        assert (entries["admin.added"].ip, entries["admin.changed"].ip) == ("203.0.113.5", "203.0.113.7")
    html = client.get("/audit/", {"account": str(account.pk)}).content.decode()
    assert "Admin: object changed" in html and "<dt>admin message</dt><dd>Changed Followers.</dd>" in html


def test_deleting_in_the_agency_admin_is_audited_one_entry_per_object(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        alone = PostFactory(caption="Deleted from its page")
        single = PostFactory(caption="Deleted alone in bulk")
        pair = PostFactory.create_batch(2)
    client = signed_in(alpha)

    # one from its own delete page, one by the bulk action, then two by the bulk action
    client.post(f"/admin/posts/post/{alone.pk}/delete/", {"post": "yes"})
    for posts in ([single], pair):
        response = client.post(
            "/admin/posts/post/",
            {"action": "delete_selected", "post": "yes", "_selected_action": [str(p.pk) for p in posts]},
            REMOTE_ADDR="203.0.113.5",
        )
        assert response.status_code == 302

    with schema_context(alpha.schema_name):
        assert not Post.objects.filter(pk__in=[alone.pk, single.pk, *(p.pk for p in pair)]).exists()
        deleted = AuditLog.objects.filter(action="admin.deleted")
        assert sorted(e.object_id for e in deleted) == sorted(str(p.pk) for p in [alone, single, *pair])
        assert {e.actor_email for e in deleted} == {OWNER}
        bulk = deleted.exclude(object_id=str(alone.pk))
        assert {e.ip for e in bulk} == {"203.0.113.5"}
        assert {e.account_id for e in bulk} == {p.account_id for p in [single, *pair]}


def test_asking_to_confirm_a_bulk_delete_records_nothing(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory()
    response = signed_in(alpha).post(
        "/admin/posts/post/", {"action": "delete_selected", "_selected_action": [str(post.pk)]}
    )
    assert response.status_code == 200 and b'name="post" value="yes"' in response.content  # the question
    with schema_context(alpha.schema_name):
        assert Post.objects.filter(pk=post.pk).exists()
        assert not AuditLog.objects.filter(action="admin.deleted").exists()


@pytest.fixture
def operator() -> Client:
    client = operator_client()
    return client


def test_an_operator_suspending_and_reactivating_an_agency_is_in_its_log(
    alpha: Agency, beta: Agency, operator: Client
) -> None:
    for action in ("suspend", "reactivate"):
        response = operator.post(
            "/admin/tenants/agency/",
            {
                "action": action,
                "_selected_action": [str(alpha.pk)],
                "reason_given": "yes",
                "reason": f"Support ticket 42: {action}",
            },
        )
        assert response.status_code == 302

    with schema_context(alpha.schema_name):
        entries = list(AuditLog.objects.filter(action__startswith="agency.").order_by("created_at"))
        assert [e.action for e in entries][-2:] == ["agency.suspended", "agency.reactivated"]
        suspended = entries[-2]
        assert suspended.actor is None and suspended.actor_email == ""
        assert suspended.changes == {
            "status": ["active", "suspended"],
            "reason": "Support ticket 42: suspend",
            "operator": "operator@postline.example",
        }
        assert suspended.object_type == "tenants.agency" and suspended.object_id == str(alpha.pk)
    with schema_context(beta.schema_name):
        assert not AuditLog.objects.filter(action="agency.suspended").exists()


def test_an_operator_renaming_an_agency_and_adding_a_host_is_in_its_log(
    alpha: Agency, operator: Client
) -> None:
    domain = alpha.domains.get()
    response = operator.post(
        f"/admin/tenants/agency/{alpha.pk}/change/",
        {
            "name": "Alpha Renamed",
            "plan": alpha.plan,
            "domains-TOTAL_FORMS": "2",
            "domains-INITIAL_FORMS": "1",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-id": str(domain.pk),
            "domains-0-tenant": str(alpha.pk),
            "domains-0-domain": domain.domain,
            "domains-0-is_primary": "on",
            "domains-1-tenant": str(alpha.pk),
            "domains-1-domain": "alpha-brand.postline.test",
        },
    )
    assert response.status_code == 302, response.content[:3000]

    with schema_context(alpha.schema_name):
        entry = AuditLog.objects.get(action="settings.changed")
        assert entry.actor is None
        assert entry.changes == {
            "name": {"old": "Alpha Agency", "new": "Alpha Renamed"},
            "operator": "operator@postline.example",
        }
        # the host added on the same page is recorded too (the unchanged one is not)
        hosts = AuditLog.objects.filter(action__startswith="domain.")
        assert [(e.action, e.changes["domain"]) for e in hosts] == [
            ("domain.added", "alpha-brand.postline.test")
        ]


def test_an_operator_adding_moving_and_removing_a_domain_is_in_each_agencys_log(
    alpha: Agency, beta: Agency, operator: Client
) -> None:
    # Given a new host added to alpha's site from the domains page
    added = operator.post(
        "/admin/tenants/domain/add/",
        {"domain": "alpha-extra.postline.test", "tenant": str(alpha.pk)},
    )
    assert added.status_code == 302, added.content[:3000]
    domain = Domain.objects.get(domain="alpha-extra.postline.test")
    # When it is moved to beta, then removed
    moved = operator.post(
        f"/admin/tenants/domain/{domain.pk}/change/",
        {"domain": domain.domain, "tenant": str(beta.pk)},
    )
    assert moved.status_code == 302, moved.content[:3000]
    removed = operator.post(f"/admin/tenants/domain/{domain.pk}/delete/", {"post": "yes"})
    assert removed.status_code == 302

    # Then alpha's log shows it arrive and leave, beta's shows it arrive and go, each with the operator
    def trail(agency: Agency) -> list[tuple[str, str, str]]:
        with schema_context(agency.schema_name):
            entries = AuditLog.objects.filter(action__startswith="domain.").order_by("created_at", "id")
            return [(e.action, e.changes["domain"], e.changes["operator"]) for e in entries]

    op = "operator@postline.example"
    host = "alpha-extra.postline.test"
    assert trail(alpha) == [("domain.added", host, op), ("domain.removed", host, op)]
    assert trail(beta) == [("domain.added", host, op), ("domain.removed", host, op)]


def changes_cell(html: str, action_label: str) -> str:
    """The Changes cell of the first row whose action reads `action_label`."""
    row = next(tr for tr in html.split("<tbody>")[1].split("<tr>") if f">{action_label}</span>" in tr)
    # (the changes are a row of their own under the entry's, spanning the table)
    return row.rsplit('<td class="wrap changes-cell" colspan="5">', 1)[1].split("</td>")[0]


def test_an_access_change_reads_as_permission_names_before_and_after(alpha: Agency) -> None:
    # Given an editor who may view and draft on an account, to whom the owner also gives Approve
    with schema_context(alpha.schema_name):
        editor = UserFactory(email="ed@example.com", role=Role.EDITOR)
        account = TikTokAccountFactory(username="bakery")
    client = signed_in(alpha)
    field = f"account_{account.pk}"
    client.post(f"/team/members/{editor.pk}/access/", {"shown": [account.pk], field: ["draft_post"]})
    client.post(
        f"/team/members/{editor.pk}/access/",
        {"shown": [account.pk], field: ["draft_post", "approve_post", "publish_post"]},
    )

    html = client.get("/audit/", {"action": "access.changed"}).content.decode()

    # Then the newest entry says what they held and what they hold now, in the page's words
    cell = changes_cell(html, "Access changed")
    assert "<dt>user</dt><dd>ed@example.com</dd>" in cell
    assert "<dt>access</dt><dd>View, Draft → View, Draft, Schedule without approval, Approve</dd>" in cell
    assert "<dt>access</dt><dd>— → View, Draft</dd>" in html  # the first grant: nothing before
    assert "_post" not in html.split("<tbody>")[1]  # no codename anywhere in the table


def test_lists_read_as_lists_and_only_changes_read_old_to_new(in_alpha: Agency) -> None:
    # Given entries written before access changes said old and new, and lists of two things
    account = TikTokAccountFactory(username="bakery")
    audit_record(
        action="access.changed",
        obj=account,
        changes={"user": "ed@example.com", "granted": ["approve_post", "draft_post"], "removed": []},
    )
    audit_record(
        action="account.connected",
        obj=account,
        changes={"status": [None, "active"], "scopes": ["user.info.basic", "video.publish"]},
    )
    audit_record(action="audit.exported", changes={"filters": {"account": "@bakery"}})
    audit_record(
        action="member.role_changed",
        changes={"email": "ed@example.com", "role": {"old": "editor", "new": "client"}},
    )
    audit_record(action="domain.changed", changes={"domain": "a.example", "fields": ["domain", "is_primary"]})
    other = TikTokAccountFactory(username="gym")
    audit_record(
        action="post.rescheduled",
        changes={
            "status": ["pending_approval", "pending_approval"],
            "scheduled_at": ["2026-11-25T14:45:00+00:00", "2026-11-25T15:45:00.000001+01:00"],
            "account": [str(account.pk), str(other.pk)],
        },
    )

    html = signed_in(in_alpha).get("/audit/").content.decode()

    access = changes_cell(html, "Access changed")
    assert "<dt>granted</dt><dd>Approve, Draft</dd>" in access
    assert "<dt>removed</dt><dd>—</dd>" in access
    connected = changes_cell(html, "Account connected")
    assert "<dt>scopes</dt><dd>user.info.basic, video.publish</dd>" in connected
    assert "<dt>status</dt><dd>— → Active</dd>" in connected  # a genuine [old, new] pair
    assert "<dt>filters</dt><dd>account: @bakery</dd>" in changes_cell(html, "Audit log exported")
    assert "→ video.publish" not in html and "→ Draft" not in html
    assert "<dt>role</dt><dd>Editor → Client reviewer</dd>" in changes_cell(html, "Member role changed")
    assert "<dt>fields</dt><dd>domain, is_primary</dd>" in changes_cell(html, "Domain changed")
    moved = changes_cell(html, "Post rescheduled")
    assert "<dt>status</dt><dd>Waiting for approval</dd>" in moved  # kept, so no arrow
    assert "<dt>scheduled at</dt><dd>25 Nov 2026, 14:45 UTC</dd>" in moved  # one moment, two zones
    assert "<dt>account</dt><dd>@bakery → @gym</dd>" in moved  # names, not ids


def test_csv_export_has_the_changes_as_the_page_reads_them(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(username="bakery")
    audit_record(
        action="access.changed",
        obj=account,
        changes={"user": "ed@example.com", "access": {"old": ["view_tiktokaccount"], "new": []}},
    )
    audit_record(action="post.edited", changes={"caption": ["Old words", "=cmd|' /C calc'!A0"]})
    entry("post.failed", changes=["-1", "two"])  # not a mapping: its value alone

    rows = {row["action"]: row for row in export_rows(signed_in(in_alpha).get("/audit/export.csv"))}

    assert rows["access.changed"]["changes"] == "user: ed@example.com; access: View → —"
    assert rows["post.edited"]["changes"] == "caption: Old words → =cmd|' /C calc'!A0"
    assert rows["post.failed"]["changes"] == "'-1, two"  # still never a formula
