"""The Team page: invitations by email, roles, per-account access, deactivation and ownership."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.permissions import Perm, access_grant_defaults, accounts_with
from apps.audit.models import AuditLog
from apps.team import services
from apps.team.models import Invitation
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text, mail_to
from tests.factories import TikTokAccountFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
NEW_PASSWORD = "violet-harbour-lantern-93"
CONFIRMED = {"confirm": "yes"}  # what the confirmation page posts
LINK = re.compile(r"https?://(?P<host>[^/\s]+)(?P<path>/team/join/(?P<token>[^/\s]+)/)")


@pytest.fixture
def django_capture_on_commit_callbacks(django_capture_on_commit_callbacks: Any, jobs: Any) -> Any:
    """pytest-django's, plus what the commit queued for a worker (the invitation emails), run here."""

    @contextmanager
    def capture(*, using: str = "default", execute: bool = False) -> Iterator[Any]:
        with django_capture_on_commit_callbacks(using=using, execute=execute) as callbacks:
            yield callbacks
        if execute:
            jobs("team")

    return capture


def signed_in(agency: Agency, email: str = OWNER) -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, response.content[:2000]
    return client


def member(agency: Agency, email: str, role: str = Role.EDITOR, **extra: Any) -> User:
    with schema_context(agency.schema_name):
        return User.objects.create_user(email, OWNER_PASSWORD, role=role, **extra)


def invite(
    client: Client, capture: Any, email: str, role: str = Role.EDITOR, accounts: list[Any] = ()
) -> Any:
    """Send an invitation from the Team page; the email goes out when the transaction commits."""
    with capture(execute=True):
        return client.post(
            "/team/invite/", {"email": email, "role": role, "accounts": [a.pk for a in accounts]}, follow=True
        )


def last_link(smtp_server: SMTPServer) -> re.Match[str]:
    match = LINK.search(mail_text(smtp_server.messages[-1]))
    assert match is not None, mail_text(smtp_server.messages[-1])
    return match


def actions(agency: Agency) -> list[str]:
    with schema_context(agency.schema_name):
        return list(AuditLog.objects.order_by("created_at").values_list("action", flat=True))


def join(agency: Agency, path: str, name: str = "Nora Quinn", password: str = NEW_PASSWORD) -> Any:
    return client_for(agency).post(path, {"name": name, "password": password, "password2": password})


def test_an_invited_person_joins_this_agency_only(
    alpha: Agency, beta: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    # Given an account to grant
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="bakery")
        other = TikTokAccountFactory(username="gym")
    owner = signed_in(alpha)

    # When the owner invites someone as an editor on one account
    response = invite(owner, django_capture_on_commit_callbacks, "Nora@Example.COM", Role.EDITOR, [account])

    # Then the page says so, lists the pending invitation, and the email carries the link
    assert response.redirect_chain == [("/team/", 302)]
    html = response.content.decode()
    assert "Invitation sent to nora@example.com as Editor. The link works once, for 7 days." in html
    assert "<strong>nora@example.com</strong>" in html
    assert [mail_to(message) for message in smtp_server.messages] == [["nora@example.com"]]
    assert "Alpha Agency" in smtp_server.messages[0]["Subject"]
    link = last_link(smtp_server)
    assert link["host"].startswith(alpha.primary_host)
    token = link["token"]
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get()
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored = [
            str(v)
            for v in Invitation.objects.values_list(
                *[f.attname for f in Invitation._meta.concrete_fields]
            ).get()
        ]
        assert not any(token in value for value in stored)  # only the hash is kept
        assert not AuditLog.objects.filter(changes__icontains=token).exists()

    # When they open the link, signed out
    page = client_for(alpha).get(link["path"])
    assert page.status_code == 200
    assert "Join Alpha Agency" in page.content.decode()
    assert "nora@example.com" in page.content.decode() and "Editor" in page.content.decode()

    # And choose a name and password
    joiner = client_for(alpha)
    response = joiner.post(
        link["path"], {"name": "Nora Quinn", "password": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True
    )

    # Then they arrive signed in on the dashboard, with a welcome
    assert response.redirect_chain == [("/", 302)]
    assert "Welcome to Alpha Agency, Nora! You joined as Editor." in response.content.decode()
    with schema_context(alpha.schema_name):
        user = User.objects.get(email="nora@example.com")
        assert (user.role, user.name, user.is_staff, user.is_superuser) == (
            "editor",
            "Nora Quinn",
            False,
            False,
        )
        assert list(accounts_with(user, Perm.DRAFT)) == [account]
        assert list(accounts_with(user, Perm.PUBLISH)) == []
        assert other not in accounts_with(user)
        invitation.refresh_from_db()
        assert invitation.accepted_user == user and invitation.accepted_at is not None
        accepted = AuditLog.objects.get(action="invitation.accepted")
        assert accepted.actor_email == "nora@example.com"
        assert accepted.changes["accounts"] == ["@bakery"]
        assert AuditLog.objects.get(action="access.changed").changes["user"] == "nora@example.com"
        sent = AuditLog.objects.get(action="invitation.sent")
        assert (sent.actor_email, sent.changes["role"]) == (OWNER, "editor")

    # And they can sign in on this agency, and not on another
    assert (
        client_for(alpha)
        .post("/login/", {"username": "nora@example.com", "password": NEW_PASSWORD})
        .status_code
        == 302
    )
    refused = client_for(beta).post("/login/", {"username": "nora@example.com", "password": NEW_PASSWORD})
    assert refused.status_code == 200
    with schema_context(beta.schema_name):
        assert not User.objects.filter(email="nora@example.com").exists()

    # And the link does not work twice
    again = join(alpha, link["path"], name="Someone Else")
    assert again.status_code == 400
    assert "This invitation has already been accepted; each link works only once." in again.content.decode()


def test_a_link_presented_on_another_agency_is_refused(
    alpha: Agency, beta: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    invite(signed_in(alpha), django_capture_on_commit_callbacks, "nora@example.com")
    path = last_link(smtp_server)["path"]

    for response in (client_for(beta).get(path), join(beta, path)):
        assert response.status_code == 400
        assert "This invitation link is not valid for Beta Agency." in response.content.decode()
    with schema_context(beta.schema_name):
        assert not User.objects.filter(email="nora@example.com").exists()
    with schema_context(alpha.schema_name):
        assert Invitation.objects.get().accepted_at is None  # still usable where it belongs
    assert client_for(alpha).get(path).status_code == 200


def test_an_expired_link_is_refused(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    invite(signed_in(alpha), django_capture_on_commit_callbacks, "nora@example.com")
    path = last_link(smtp_server)["path"]
    with schema_context(alpha.schema_name):
        eight_days_ago = timezone.now() - timezone.timedelta(days=8)
        Invitation.objects.update(
            created_at=eight_days_ago, expires_at=eight_days_ago + timezone.timedelta(days=7)
        )

    response = join(alpha, path)

    assert response.status_code == 400
    assert "This invitation expired on" in response.content.decode()
    assert "Ask Alpha Agency to send you a new one." in response.content.decode()
    with schema_context(alpha.schema_name):
        assert not User.objects.filter(email="nora@example.com").exists()
    # The Team page shows it expired, and resending it gives a working link
    owner = signed_in(alpha)
    assert '<span class="badge expired">Expired</span>' in owner.get("/team/").content.decode()
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(f"/team/invitations/{invitation.pk}/resend/")
    assert join(alpha, last_link(smtp_server)["path"]).status_code == 302


def test_a_revoked_link_is_refused(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in(alpha)
    invite(owner, django_capture_on_commit_callbacks, "nora@example.com")
    path = last_link(smtp_server)["path"]
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get()

    response = owner.post(f"/team/invitations/{invitation.pk}/revoke/", follow=True)

    assert (
        "Revoked the invitation for nora@example.com; its link no longer works." in response.content.decode()
    )
    assert "No invitation is waiting for an answer." in response.content.decode()
    refused = join(alpha, path)
    assert refused.status_code == 400
    assert "This invitation was withdrawn by Alpha Agency." in refused.content.decode()
    assert actions(alpha)[-1] == "invitation.revoked"


def test_resending_sends_a_new_link_and_the_old_one_stops_working(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in(alpha)
    invite(owner, django_capture_on_commit_callbacks, "nora@example.com")
    old = last_link(smtp_server)["path"]
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(f"/team/invitations/{invitation.pk}/resend/", follow=True)

    assert "Sent a new invitation link to nora@example.com; the previous link no longer works." in (
        response.content.decode()
    )
    assert len(smtp_server.messages) == 2
    new = last_link(smtp_server)["path"]
    assert new != old
    refused = client_for(alpha).get(old)
    assert refused.status_code == 400
    assert "not valid for Alpha Agency" in refused.content.decode()
    assert join(alpha, new).status_code == 302
    assert "invitation.resent" in actions(alpha)


def test_an_existing_members_email_gets_a_clear_message(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in(alpha)
    response = invite(owner, django_capture_on_commit_callbacks, "OWNER@shared.example")

    assert response.status_code == 200
    assert "owner@shared.example is already a member of this agency." in response.content.decode()
    assert 'value="OWNER@shared.example"' in response.content.decode()  # what was typed stays
    assert smtp_server.messages == []

    # Someone who became a member after being invited is told to sign in instead
    invite(owner, django_capture_on_commit_callbacks, "nora@example.com")
    path = last_link(smtp_server)["path"]
    member(alpha, "nora@example.com")
    refused = join(alpha, path)
    assert refused.status_code == 400
    assert (
        "nora@example.com is already a member of Alpha Agency: sign in instead." in refused.content.decode()
    )


def test_a_weak_password_is_refused_and_the_name_kept(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    invite(signed_in(alpha), django_capture_on_commit_callbacks, "nora@example.com")
    response = join(alpha, last_link(smtp_server)["path"], password="12345678")

    assert response.status_code == 200
    html = response.content.decode()
    assert "This password is too common." in html
    assert 'value="Nora Quinn"' in html
    with schema_context(alpha.schema_name):
        assert not User.objects.filter(email="nora@example.com").exists()


def test_inviting_a_deactivated_person_reactivates_them(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    gone = member(alpha, "nora@example.com", Role.EDITOR)
    owner = signed_in(alpha)
    owner.post(f"/team/members/{gone.pk}/deactivate/", CONFIRMED)
    invite(owner, django_capture_on_commit_callbacks, "nora@example.com", Role.VIEWER)

    assert join(alpha, last_link(smtp_server)["path"], name="Nora Back").status_code == 302

    with schema_context(alpha.schema_name):
        back = User.objects.get(email="nora@example.com")
        assert back.pk == gone.pk  # the same person, history and all
        assert (back.role, back.name, back.is_active, back.deleted_at) == ("viewer", "Nora Back", True, None)
        assert AuditLog.objects.get(action="invitation.accepted").changes["reactivated"] is True


def test_changing_a_role_regrants_its_defaults_and_keeps_flags_in_step(alpha: Agency) -> None:
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        access_grant_defaults(user=editor, accounts=[account], by=None)
        assert list(accounts_with(editor, Perm.PUBLISH)) == []
    owner = signed_in(alpha)

    response = owner.post(f"/team/members/{editor.pk}/role/", {"role": Role.MANAGER}, follow=True)

    assert "ed@example.com is now Manager (was Editor)." in response.content.decode()
    with schema_context(alpha.schema_name):
        editor.refresh_from_db()
        assert editor.role == Role.MANAGER
        assert list(accounts_with(editor, Perm.PUBLISH)) == [account]
        entry = AuditLog.objects.get(action="member.role_changed")
        assert entry.changes["role"] == {"old": "editor", "new": "manager"}
        assert entry.actor_email == OWNER

    owner.post(f"/team/members/{editor.pk}/role/", {"role": Role.ADMIN})
    with schema_context(alpha.schema_name):
        editor.refresh_from_db()
        assert (editor.role, editor.is_staff, editor.is_superuser) == ("admin", True, True)
    owner.post(f"/team/members/{editor.pk}/role/", {"role": Role.VIEWER})
    with schema_context(alpha.schema_name):
        editor.refresh_from_db()
        assert (editor.role, editor.is_staff, editor.is_superuser) == ("viewer", False, False)


def test_the_access_matrix_changes_what_a_member_may_do(alpha: Agency) -> None:
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    with schema_context(alpha.schema_name):
        bakery = TikTokAccountFactory(username="bakery")
        gym = TikTokAccountFactory(username="gym")
    owner = signed_in(alpha)
    page = owner.get(f"/team/members/{editor.pk}/").content.decode()
    assert "Schedule without approval" in page and "Manage connection" in page

    shown = [str(bakery.pk), str(gym.pk)]
    assert all(f'name="shown" value="{pk}"' in page for pk in shown)
    response = owner.post(
        f"/team/members/{editor.pk}/access/",
        {
            "shown": shown,
            f"account_{bakery.pk}": [Perm.VIEW, Perm.PUBLISH],
            f"account_{gym.pk}": [Perm.APPROVE],
        },
        follow=True,
    )

    assert "Saved ed@example.com&#x27;s access: 2 accounts changed." in response.content.decode()
    with schema_context(alpha.schema_name):
        assert list(accounts_with(editor, Perm.PUBLISH)) == [bakery]
        assert list(accounts_with(editor, Perm.APPROVE)) == [gym]
        assert list(accounts_with(editor, Perm.VIEW)) == [bakery, gym]  # View comes with any other
        assert AuditLog.objects.filter(action="access.changed").count() == 2
    # The form shows what is held now
    assert f'name="account_{bakery.pk}" value="publish_post"' in response.content.decode()

    owner.post(f"/team/members/{editor.pk}/access/", {"shown": shown, f"account_{gym.pk}": [Perm.VIEW]})
    with schema_context(alpha.schema_name):
        assert list(accounts_with(editor)) == [gym]
        assert list(accounts_with(editor, Perm.APPROVE)) == []


def test_saving_the_access_matrix_leaves_an_account_connected_meanwhile_alone(alpha: Agency) -> None:
    # Given the owner opened the editor's access page, then the editor connected an account
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    with schema_context(alpha.schema_name):
        bakery = TikTokAccountFactory(username="bakery")
    owner = signed_in(alpha)
    assert f'name="shown" value="{bakery.pk}"' in owner.get(f"/team/members/{editor.pk}/").content.decode()
    with schema_context(alpha.schema_name):
        theirs = TikTokAccountFactory(username="newclient")
        access_grant_defaults(user=editor, accounts=[theirs], by=editor)

    # When the owner saves the page they had open
    owner.post(
        f"/team/members/{editor.pk}/access/", {"shown": [str(bakery.pk)], f"account_{bakery.pk}": [Perm.VIEW]}
    )

    # Then the new account keeps its access, and the shown one got what was ticked
    with schema_context(alpha.schema_name):
        assert list(accounts_with(editor, Perm.DRAFT)) == [theirs]
        assert list(accounts_with(editor)) == [bakery, theirs]


@pytest.mark.parametrize("change", ["deactivate", "demote"])
def test_an_inviter_who_no_longer_manages_the_team_leaves_no_working_link(
    alpha: Agency, django_capture_on_commit_callbacks: Any, change: str, smtp_server: SMTPServer
) -> None:
    # Given an admin who invited someone as admin
    admin = member(alpha, "ad@example.com", Role.ADMIN)
    invite(
        signed_in(alpha, "ad@example.com"), django_capture_on_commit_callbacks, "nora@example.com", Role.ADMIN
    )
    path = last_link(smtp_server)["path"]

    # When an owner deactivates them, or makes them an editor
    owner = signed_in(alpha)
    if change == "deactivate":
        response = owner.post(f"/team/members/{admin.pk}/deactivate/", CONFIRMED, follow=True)
    else:
        response = owner.post(f"/team/members/{admin.pk}/role/", {"role": Role.EDITOR}, follow=True)
    assert response.status_code == 200

    # Then their invitation is withdrawn, says why in the log, and its link does not work
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get(email="nora@example.com")
        assert invitation.revoked_at is not None
        entry = AuditLog.objects.get(action="invitation.revoked")
        assert entry.changes["email"] == "nora@example.com" and "inviter" in entry.changes["reason"]
    refused = join(alpha, path)
    assert refused.status_code == 400
    assert "This invitation was withdrawn" in refused.content.decode()
    with schema_context(alpha.schema_name):
        assert not User.all_objects.filter(email="nora@example.com").exists()


def test_a_link_from_an_inviter_who_lost_the_role_another_way_is_refused(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    # Given an invitation whose sender is no longer an admin, however that came about
    admin = member(alpha, "ad@example.com", Role.ADMIN)
    invite(signed_in(alpha, "ad@example.com"), django_capture_on_commit_callbacks, "nora@example.com")
    path = last_link(smtp_server)["path"]
    with schema_context(alpha.schema_name):
        User.objects.filter(pk=admin.pk).update(role=Role.VIEWER)

    refused = join(alpha, path)

    assert refused.status_code == 400
    assert "whoever sent it no longer manages Alpha Agency" in refused.content.decode()


def test_owners_and_admins_are_shown_holding_everything(alpha: Agency) -> None:
    admin = member(alpha, "ad@example.com", Role.ADMIN)
    page = signed_in(alpha).get(f"/team/members/{admin.pk}/").content.decode()
    assert "holds every permission on every account" in page
    assert "/access/" not in page


def test_deactivating_ends_sessions_at_once_and_keeps_history(alpha: Agency) -> None:
    editor = member(alpha, "ed@example.com", Role.EDITOR, name="Ed Itor")
    ed = signed_in(alpha, "ed@example.com")
    assert ed.get("/").status_code == 200
    owner = signed_in(alpha)

    # The button first asks, saying what will happen; nothing happens until it is confirmed
    asked = owner.post(f"/team/members/{editor.pk}/deactivate/").content.decode()
    assert "Deactivate ed@example.com?" in asked and "will be signed out at once" in asked
    assert 'name="confirm" value="yes"' in asked
    assert ed.get("/").status_code == 200
    response = owner.post(f"/team/members/{editor.pk}/deactivate/", CONFIRMED, follow=True)

    html = response.content.decode()
    assert "Deactivated ed@example.com: they were signed out and can no longer sign in." in html
    assert "Deactivated</h2>" in html and "was Editor" in html
    following = ed.get("/")
    assert following.status_code == 302 and following["Location"].startswith("/login/")
    assert (
        client_for(alpha)
        .post("/login/", {"username": "ed@example.com", "password": OWNER_PASSWORD})
        .status_code
        == 200
    )
    with schema_context(alpha.schema_name):
        gone = User.all_objects.get(pk=editor.pk)
        assert gone.deleted_at is not None and not gone.is_active
        assert AuditLog.objects.filter(actor=gone, action="login.succeeded").exists()  # history stays
        entry = AuditLog.objects.get(action="member.deactivated")
        assert entry.changes["sessions_ended"] == 1 and entry.actor_email == OWNER
    assert owner.get(f"/team/members/{editor.pk}/").status_code == 404


def test_the_last_owner_can_be_neither_demoted_nor_deactivated(alpha: Agency) -> None:
    owner = signed_in(alpha)
    with schema_context(alpha.schema_name):
        me = User.objects.get(email=OWNER)

    demote = owner.post(f"/team/members/{me.pk}/role/", {"role": Role.ADMIN})
    assert demote.status_code == 200
    assert (
        "owner@shared.example is the agency&#x27;s last owner and cannot be demoted."
        in demote.content.decode()
    )
    deactivate = owner.post(f"/team/members/{me.pk}/deactivate/", CONFIRMED, follow=True)
    assert "You cannot deactivate yourself." in deactivate.content.decode()

    # An owner demoted a moment ago, acting from a stale page, cannot remove the last one either
    second = member(alpha, "second@example.com", Role.OWNER)
    with schema_context(alpha.schema_name):
        stale = User.objects.get(pk=second.pk)
        services.member_change_role(member=second, role=Role.ADMIN, by=me)
        with pytest.raises(ValidationError, match="Only an owner can change an owner"):
            services.member_deactivate(member=me, by=stale)  # they are an admin now
        me.refresh_from_db()
        assert (me.role, me.is_active) == (Role.OWNER, True)
        assert not AuditLog.objects.filter(action="member.deactivated").exists()


def test_ownership_is_transferred(alpha: Agency) -> None:
    heir = member(alpha, "heir@example.com", Role.EDITOR)
    owner = signed_in(alpha)
    assert "Transfer ownership to heir@example.com" in owner.get(f"/team/members/{heir.pk}/").content.decode()

    asked = owner.post(f"/team/members/{heir.pk}/transfer/").content.decode()
    assert "Make heir@example.com an owner?" in asked and "you become an admin" in asked
    with schema_context(alpha.schema_name):
        assert User.objects.get(email=OWNER).role == Role.OWNER  # not yet
    response = owner.post(f"/team/members/{heir.pk}/transfer/", CONFIRMED, follow=True)

    assert "heir@example.com now owns the agency; you are an admin." in response.content.decode()
    with schema_context(alpha.schema_name):
        roles = dict(User.objects.values_list("email", "role"))
        assert roles == {OWNER: "admin", "heir@example.com": "owner"}
        heir.refresh_from_db()
        assert heir.is_staff and heir.is_superuser
        entry = AuditLog.objects.get(action="ownership.transferred")
        assert (entry.changes["from"], entry.changes["to"]) == (OWNER, "heir@example.com")
    # Now an admin, the former owner can no longer change the new owner
    assert "Only an owner can change an owner." in owner.get(f"/team/members/{heir.pk}/").content.decode()


def test_an_admin_cannot_touch_an_owner(alpha: Agency) -> None:
    member(alpha, "ad@example.com", Role.ADMIN)
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    admin = signed_in(alpha, "ad@example.com")
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email=OWNER)

    page = admin.get(f"/team/members/{owner.pk}/").content.decode()
    assert "Only an owner can change an owner." in page
    assert "Deactivate" not in page and "Transfer ownership" not in page
    refused = admin.post(f"/team/members/{owner.pk}/role/", {"role": Role.VIEWER})
    assert "Only an owner can change an owner or make someone an owner." in refused.content.decode()
    # Refused before any "Are you sure?" is asked, and after it too
    for data in ({}, CONFIRMED):
        refused = admin.post(f"/team/members/{owner.pk}/deactivate/", data, follow=True).content.decode()
        assert "Only an owner can change an owner or make someone an owner." in refused
        assert "Deactivate owner@shared.example?" not in refused
    asked = admin.post(f"/team/members/{owner.pk}/transfer/", follow=True).content.decode()
    assert "Only an owner can transfer ownership." in asked and "an owner?" not in asked
    assert (
        admin.post(f"/team/members/{owner.pk}/transfer/", CONFIRMED, follow=True)
        .content.decode()
        .count("Only an owner can transfer ownership.")
    )
    making_owner = admin.post(f"/team/members/{editor.pk}/role/", {"role": Role.OWNER})
    assert "Choose a role from the list." in making_owner.content.decode()
    with schema_context(alpha.schema_name):
        assert dict(User.objects.values_list("email", "role"))[OWNER] == "owner"
        assert User.objects.get(pk=editor.pk).role == Role.EDITOR
        assert not AuditLog.objects.filter(action__in=["member.role_changed", "member.deactivated"]).exists()


def team_urls(agency: Agency) -> list[tuple[str, str]]:
    with schema_context(agency.schema_name):
        someone = User.objects.get(email=OWNER)
        invitation = services.invitation_send(
            email="nora@example.com", role=Role.VIEWER, accounts=[], by=someone
        )
    return [
        ("get", "/team/"),
        ("post", "/team/invite/"),
        ("post", f"/team/invitations/{invitation.pk}/resend/"),
        ("post", f"/team/invitations/{invitation.pk}/revoke/"),
        ("get", f"/team/members/{someone.pk}/"),
        ("post", f"/team/members/{someone.pk}/role/"),
        ("post", f"/team/members/{someone.pk}/access/"),
        ("post", f"/team/members/{someone.pk}/deactivate/"),
        ("post", f"/team/members/{someone.pk}/transfer/"),
    ]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.EDITOR, Role.VIEWER, Role.CLIENT])
def test_every_team_url_is_not_found_for_other_roles(alpha: Agency, role: str) -> None:
    member(alpha, "someone@example.com", role)
    client = signed_in(alpha, "someone@example.com")
    for method, url in team_urls(alpha):
        assert getattr(client, method)(url, {"role": Role.OWNER}).status_code == 404, url
    assert 'href="/team/"' not in client.get("/").content.decode()
    with schema_context(alpha.schema_name):
        assert User.objects.get(email=OWNER).role == Role.OWNER


def test_every_team_url_sends_signed_out_visitors_to_sign_in(alpha: Agency) -> None:
    client = client_for(alpha)
    for method, url in team_urls(alpha):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"] == f"/login/?next={url}", url


def test_a_signed_in_person_opening_someone_elses_invitation_is_told(
    alpha: Agency, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in(alpha)
    invite(owner, django_capture_on_commit_callbacks, "nora@example.com")
    page = owner.get(last_link(smtp_server)["path"]).content.decode()
    assert "You are signed in as owner@shared.example, but this invitation is for nora@example.com." in page


def test_the_team_page_does_not_grow_in_queries(alpha: Agency) -> None:
    owner = signed_in(alpha)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner.get("/team/").status_code == 200
        return len(captured)

    def grow(n: int) -> None:
        with schema_context(alpha.schema_name):
            by = User.objects.get(email=OWNER)
            for i in range(n):
                account = TikTokAccountFactory()
                person = User.objects.create_user(f"p{n}-{i}@example.com", OWNER_PASSWORD, role=Role.EDITOR)
                access_grant_defaults(user=person, accounts=[account], by=by)
                services.invitation_send(
                    email=f"i{n}-{i}@example.com", role=Role.VIEWER, accounts=[account], by=by
                )
                gone = User.objects.create_user(f"g{n}-{i}@example.com", OWNER_PASSWORD)
                services.member_deactivate(member=gone, by=by)

    grow(1)
    few = queries()
    grow(4)
    assert queries() == few


def test_the_team_pages_its_members_owners_first_each_once(alpha: Agency) -> None:
    # Given an agency of 61 active members: the owner, 10 admins and 50 editors
    with schema_context(alpha.schema_name):
        for index in range(50):
            User.objects.create_user(f"editor{index:02d}@example.com", OWNER_PASSWORD, role=Role.EDITOR)
        for index in range(10):
            User.objects.create_user(f"zadmin{index:02d}@example.com", OWNER_PASSWORD, role=Role.ADMIN)
    owner = signed_in(alpha)

    def shown(response: Any) -> list[str]:
        table = response.content.decode().split('<div id="members">')[1].split("</table>")[0]
        return re.findall(r'<span class="muted">([^<]+@[^<]+)</span>|<strong>([^<]+@[^<]+)</strong>', table)

    # When the owner opens the Team page: 50 members, the owner then the admins first
    first = owner.get("/team/")
    rows = ["".join(pair) for pair in shown(first)]
    assert len(rows) == 50
    assert rows[0] == OWNER and rows[1:11] == [f"zadmin{index:02d}@example.com" for index in range(10)]
    more = re.search(r'href="([^"]+)" rel="next"', first.content.decode())
    assert more is not None and "More members" in first.content.decode()

    # And "More members" shows the other 11, nobody twice, nobody left out
    second = owner.get(more.group(1).replace("&amp;", "&"))
    rest = ["".join(pair) for pair in shown(second)]
    assert len(rest) == 11 and not set(rest) & set(rows)
    assert sorted(rows + rest) == sorted(
        [OWNER]
        + [f"zadmin{index:02d}@example.com" for index in range(10)]
        + [f"editor{index:02d}@example.com" for index in range(50)]
    )
    # With htmx the link swaps only the members' table
    fragment = owner.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div id="members">')


def test_the_agency_admin_leaves_roles_and_invitations_to_the_team_page(
    alpha: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    owner = signed_in(alpha)
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    page = owner.get(f"/admin/users/user/{editor.pk}/change/").content.decode()
    assert 'name="role"' not in page and 'name="is_superuser"' not in page and 'name="is_active"' not in page
    assert owner.get("/admin/users/user/add/").status_code == 403
    assert owner.get(f"/admin/users/user/{editor.pk}/delete/").status_code == 403

    invite(owner, django_capture_on_commit_callbacks, "nora@example.com")
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get()
    page = owner.get(f"/admin/team/invitation/{invitation.pk}/change/").content.decode()
    assert "nora@example.com" in page
    assert invitation.token_hash not in page
    assert "token_hash" not in page and "Token hash" not in page
    assert owner.get("/admin/team/invitation/add/").status_code == 403


def test_an_admin_cannot_take_an_owner_over_through_the_agency_admin(alpha: Agency) -> None:
    """Changing an owner's email or password there would let an admin reset their way in."""
    member(alpha, "ad@example.com", Role.ADMIN, is_staff=True, is_superuser=True)
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    admin = signed_in(alpha, "ad@example.com")
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email=OWNER)
        owner_password = owner.password

    assert admin.get(f"/admin/users/user/{owner.pk}/password/").status_code == 403
    refused = admin.post(
        f"/admin/users/user/{owner.pk}/password/",
        {
            "password1": "a-new-long-password-77",
            "password2": "a-new-long-password-77",
            "usable_password": "true",
        },
    )
    assert refused.status_code == 403
    page = admin.get(f"/admin/users/user/{owner.pk}/change/").content.decode()
    assert 'name="email"' not in page  # shown, not editable
    admin.post(f"/admin/users/user/{owner.pk}/change/", {"email": "ad@example.com", "name": "Mine now"})
    # An admin still looks after the people below them.
    assert admin.get(f"/admin/users/user/{editor.pk}/password/").status_code == 200
    with schema_context(alpha.schema_name):
        owner = User.objects.get(pk=owner.pk)
        assert (owner.email, owner.password, owner.name) == (OWNER, owner_password, owner.name)
        assert owner.name != "Mine now"


def test_the_team_page_says_when_each_member_last_signed_in(alpha: Agency) -> None:
    member(alpha, "never@example.com", Role.VIEWER)
    page = signed_in(alpha).get("/team/").content.decode()
    page = page[page.index("<table") :]
    # The owner just signed in: "now" or seconds, never "0 minutes ago".
    owner_row = page[page.index(OWNER) :].split("</tr>")[0]
    assert re.search(r">(now|\d+ seconds? ago)</time>", owner_row), owner_row
    never_row = page[page.index("never@example.com") :].split("</tr>")[0]
    assert "Never" in never_row


def test_the_team_page_counts_the_accounts_each_member_holds_not_their_grants(alpha: Agency) -> None:
    # Given an editor granted a role's several permissions on two accounts, and a viewer on none
    with schema_context(alpha.schema_name):
        by = User.objects.get(email=OWNER)
        accounts = [TikTokAccountFactory(), TikTokAccountFactory()]
        access_grant_defaults(user=member(alpha, "two@example.com"), accounts=accounts, by=by)
    member(alpha, "none@example.com", Role.VIEWER)
    page = signed_in(alpha).get("/team/").content.decode()
    page = page[page.index("<table") :]

    def count(email: str) -> str:
        row = page[page.index(email) :].split("</tr>")[0]
        return re.sub(r"<[^>]+>", "", row.split("<td>")[2]).strip()

    # Then each member's row counts accounts, owners holding all of them
    assert count("two@example.com") == "2 accounts"
    assert count("none@example.com") == "0 accounts"
    assert count(OWNER) == "All accounts"


def test_an_owner_demoted_a_moment_ago_can_no_longer_change_owners(alpha: Agency) -> None:
    # Given three owners, one of whom is demoted while a page of theirs is still open
    second = member(alpha, "second@example.com", Role.OWNER)
    third = member(alpha, "third@example.com", Role.OWNER)
    with schema_context(alpha.schema_name):
        me = User.objects.get(email=OWNER)
        stale = User.objects.get(pk=second.pk)  # as their request loaded them
        services.member_change_role(member=second, role=Role.ADMIN, by=me)

        # When that request goes on to demote another owner, with two owners left it is refused
        with pytest.raises(ValidationError, match="Only an owner can change an owner"):
            services.member_change_role(member=third, role=Role.EDITOR, by=stale)
        with pytest.raises(ValidationError, match="Only an owner can change an owner"):
            services.member_deactivate(member=third, by=stale)
        third.refresh_from_db()
        assert (third.role, third.is_active) == (Role.OWNER, True)


def test_making_someone_an_owner_through_the_role_field_asks_first(alpha: Agency) -> None:
    editor = member(alpha, "ed@example.com", Role.EDITOR)
    owner = signed_in(alpha)

    asked = owner.post(f"/team/members/{editor.pk}/role/", {"role": Role.OWNER}).content.decode()

    assert "Make ed@example.com an owner too?" in asked and "you included" in asked
    assert 'name="role" value="owner"' in asked and 'name="confirm" value="yes"' in asked
    with schema_context(alpha.schema_name):
        assert User.objects.get(pk=editor.pk).role == Role.EDITOR  # not yet
    done = owner.post(f"/team/members/{editor.pk}/role/", {"role": Role.OWNER, **CONFIRMED}, follow=True)
    assert "ed@example.com is now Owner (was Editor)." in done.content.decode()
    # Other role changes need no question
    other = member(alpha, "vi@example.com", Role.VIEWER)
    moved = owner.post(f"/team/members/{other.pk}/role/", {"role": Role.MANAGER}, follow=True)
    assert "vi@example.com is now Manager (was Viewer)." in moved.content.decode()
