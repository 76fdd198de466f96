"""Two-step sign-in (django-otp): setting it up, signing in with a code or a recovery code, who
must use it, asking again before sensitive actions, and the idle session timeout."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.audit.models import AuditLog
from apps.mfa.models import RecoveryCode
from apps.mfa.reauth import REAUTH_SESSION_KEY
from apps.users.models import Role, User
from tenants.models import Agency, MfaPolicy
from tests.conftest import OWNER_PASSWORD, client_for, totp_from_secret, totp_next
from tests.factories import TikTokAccountFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
OPERATOR = "operator@postline.example"
SETUP = "/account/two-step/"
CODE = "/account/two-step/code/"


def sign_in(client: Client, email: str = OWNER, password: str = OWNER_PASSWORD, path: str = "/login/") -> Any:
    # The admin's sign-in form carries where to go next (its index) in a hidden field.
    return client.post(path, {"username": email, "password": password, "next": path.replace("login/", "")})


def signed_in(agency: Agency | None, email: str = OWNER, path: str = "/login/") -> Client:
    client = client_for(agency)
    response = sign_in(client, email, path=path)
    assert response.status_code == 302, response.content[:1500]
    return client


def secret_on(page: bytes) -> str:
    match = re.search(rb"data-secret>([A-Z2-7 ]+)<", page)
    assert match is not None, page[:3000]
    return match.group(1).decode()


def enrol(client: Client) -> list[str]:
    """Set up an authenticator from the page, as a person would; returns the recovery codes shown."""
    page = client.get(SETUP)
    assert page.status_code == 200
    done = client.post(f"{SETUP}confirm/", {"code": totp_from_secret(secret_on(page.content))})
    assert done.status_code == 200, done.content[:2000]
    return re.findall(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>", done.content.decode())


def close_reauth_window(client: Client) -> None:
    session = client.session
    session[REAUTH_SESSION_KEY] = 0
    session.save()


# --- Setting it up ---


def test_an_owner_sets_up_an_authenticator_with_a_qr_code_and_gets_hashed_recovery_codes(
    alpha: Agency,
) -> None:
    owner = signed_in(alpha)
    page = owner.get(SETUP)
    assert b'<img class="qr" src="/account/two-step/qr.svg"' in page.content
    qr = owner.get("/account/two-step/qr.svg")
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    assert b"<script" not in qr.content and b"style=" not in qr.content
    # Opening the page stored nothing
    with schema_context(alpha.schema_name):
        assert not TOTPDevice.objects.exists()

    # A wrong code is refused, next to the field, and changes nothing
    wrong = owner.post(f"{SETUP}confirm/", {"code": "000000"})
    assert wrong.status_code == 200
    assert b"That code is not the one your app shows now" in wrong.content
    for bad in ("", "12ab56", "1" * 20):
        assert owner.post(f"{SETUP}confirm/", {"code": bad}).status_code == 200
    with schema_context(alpha.schema_name):
        assert not TOTPDevice.objects.exists()

    codes = owner.post(f"{SETUP}confirm/", {"code": totp_from_secret(secret_on(page.content))})
    shown = re.findall(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>", codes.content.decode())
    assert len(shown) == 10 and b"they are not shown again" in codes.content
    with schema_context(alpha.schema_name):
        assert TOTPDevice.objects.get().confirmed
        stored = list(RecoveryCode.objects.values_list("code_hash", flat=True))
        assert len(stored) == 10 and not set(stored) & set(shown) and all(len(h) == 64 for h in stored)
        assert AuditLog.objects.filter(action="mfa.enabled").count() == 1
    assert b"On" in owner.get(SETUP).content and b"10 recovery codes left" in owner.get(SETUP).content


# --- Signing in with two steps ---


def test_signing_in_takes_a_code_once_set_up_and_each_code_works_once(alpha: Agency) -> None:
    codes = enrol(signed_in(alpha))
    with schema_context(alpha.schema_name):
        owner_user = User.objects.get(email=OWNER)

    # Given the password, the session reaches nothing but the code page
    client = client_for(alpha)
    response = sign_in(client)
    assert response.status_code == 302
    home = client.get("/")
    assert (home.status_code, home["Location"]) == (302, f"{CODE}?next=%2F")
    assert client.get("/accounts/").status_code == 302
    assert client.get("/admin/").status_code == 302
    page = client.get(CODE)
    assert b"Enter your code" in page.content and b'aria-label="Main"' not in page.content

    # A wrong code is refused
    wrong = client.post(CODE, {"code": "123456"})
    assert wrong.status_code == 200 and b"That code is not right" in wrong.content
    # The right one signs in
    with schema_context(alpha.schema_name):
        code = totp_next(owner_user)
    assert client.post(CODE, {"code": code, "next": "/accounts/"})["Location"] == "/accounts/"
    assert client.get("/").status_code == 200

    # The same code again, elsewhere, is refused
    other = client_for(alpha)
    sign_in(other)
    replay = other.post(CODE, {"code": code})
    assert replay.status_code == 200 and b"it was used already" in replay.content
    assert other.get("/").status_code == 302

    # A recovery code works, once
    assert other.post(CODE, {"code": codes[0].upper()}).status_code == 302
    assert b"You signed in with a recovery code" in other.get("/", follow=True).content
    third = client_for(alpha)
    sign_in(third)
    assert third.post(CODE, {"code": codes[0]}).status_code == 200
    assert third.get("/").status_code == 302


def test_wrong_codes_count_in_the_sign_in_lockout(alpha: Agency) -> None:
    enrol(signed_in(alpha))
    client = client_for(alpha)
    sign_in(client)
    for _ in range(4):
        assert client.post(CODE, {"code": "000000"}).status_code == 200
    locked = client.post(CODE, {"code": "000000"})
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts for this email" in locked.content
    # Then the password alone is refused too
    assert sign_in(client_for(alpha)).status_code == 429


def test_operators_must_set_up_two_step_sign_in_before_the_admin(alpha: Agency) -> None:
    User.objects.create_superuser(OPERATOR, OWNER_PASSWORD)
    operator = signed_in(None, OPERATOR, "/admin/login/")
    response = operator.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(SETUP)
    assert b"Operators must use two-step sign-in" in operator.get(SETUP).content
    assert operator.get("/admin/tenants/agency/").status_code == 302

    enrol(operator)
    assert b"Alpha Agency" in operator.get("/admin/tenants/agency/").content
    # And next time, the admin takes a code
    again = signed_in(None, OPERATOR, "/admin/login/")
    assert again.get("/admin/")["Location"].startswith(CODE)
    operator_user = User.objects.get(email=OPERATOR)
    assert again.post(CODE, {"code": totp_next(operator_user)})["Location"] == "/admin/"
    assert again.get("/admin/").status_code == 200
    # Operators cannot turn it off
    off = again.post(f"{SETUP}turn-off/", follow=True)
    assert b"Operators must keep two-step sign-in on." in off.content
    assert TOTPDevice.objects.filter(user=operator_user).exists()


# --- Who must, in an agency ---


def test_an_owner_requires_two_step_sign_in_for_owners_and_admins(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("ad@alpha.example", OWNER_PASSWORD, role=Role.ADMIN, is_staff=True)
        User.objects.create_user("ed@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    owner = signed_in(alpha)

    # Not before the owner uses it themselves
    refused = owner.post("/settings/two-step/", {"mfa_policy": MfaPolicy.ADMINS})
    assert refused.status_code == 400 and b"Turn on two-step sign-in for yourself first" in refused.content
    bad = owner.post("/settings/two-step/", {"mfa_policy": "sometimes"})
    assert bad.status_code == 400 and b"Choose one of the options" in bad.content
    alpha.refresh_from_db()
    assert alpha.mfa_policy == MfaPolicy.NOBODY

    enrol(owner)
    saved = owner.post("/settings/two-step/", {"mfa_policy": MfaPolicy.ADMINS}, follow=True)
    assert b"Saved: owners and admins must use two-step sign-in." in saved.content
    alpha.refresh_from_db()
    assert alpha.mfa_policy == MfaPolicy.ADMINS

    # Then an admin is sent to set it up; an editor is not
    admin = signed_in(alpha, "ad@alpha.example")
    assert admin.get("/")["Location"].startswith(SETUP)
    assert b"Alpha Agency requires two-step sign-in for you" in admin.get(SETUP).content
    # and may not change the rule
    assert admin.post("/settings/two-step/", {"mfa_policy": MfaPolicy.NOBODY}).status_code in (302, 404)
    editor = signed_in(alpha, "ed@alpha.example")
    assert editor.get("/").status_code == 200


def test_turning_two_step_sign_in_off_asks_for_the_password_again(alpha: Agency) -> None:
    owner = signed_in(alpha)
    enrol(owner)
    close_reauth_window(owner)
    refused = owner.post(f"{SETUP}turn-off/", {"reauth_secret": "not-my-password"})
    assert refused.status_code == 400
    assert b"That is not your password or a current code; nothing was changed." in refused.content
    with schema_context(alpha.schema_name):
        assert TOTPDevice.objects.filter(confirmed=True).exists()
    done = owner.post(f"{SETUP}turn-off/", {"reauth_secret": OWNER_PASSWORD}, follow=True)
    assert b"Two-step sign-in is off" in done.content
    with schema_context(alpha.schema_name):
        assert not TOTPDevice.objects.exists() and not RecoveryCode.objects.exists()


# --- Asking again before sensitive actions ---


def test_deactivating_someone_asks_for_the_password_again_once_the_window_closed(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        member = User.objects.create_user("ed@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    owner = signed_in(alpha)
    close_reauth_window(owner)
    url = f"/team/members/{member.pk}/deactivate/"

    asked = owner.post(url, {"confirm": "yes"})
    assert asked.status_code == 400
    assert b"To go ahead, enter your password" in asked.content
    wrong = owner.post(url, {"confirm": "yes", "reauth_secret": "guess"})
    assert wrong.status_code == 400 and b"nothing was changed" in wrong.content
    with schema_context(alpha.schema_name):
        assert User.objects.get(pk=member.pk).is_active

    done = owner.post(url, {"confirm": "yes", "reauth_secret": OWNER_PASSWORD}, follow=True)
    assert b"Deactivated ed@alpha.example" in done.content
    with schema_context(alpha.schema_name):
        assert not User.all_objects.get(pk=member.pk).is_active


def test_ownership_transfer_and_disconnect_ask_again_and_change_nothing_when_refused(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        member = User.objects.create_user("ad@alpha.example", OWNER_PASSWORD, role=Role.ADMIN, is_staff=True)
        account = TikTokAccountFactory()
    owner = signed_in(alpha)
    close_reauth_window(owner)

    transfer = owner.post(f"/team/members/{member.pk}/transfer/", {"confirm": "yes", "reauth_secret": "x"})
    assert transfer.status_code == 400 and b"nothing was changed" in transfer.content
    disconnect = owner.post(f"/accounts/{account.pk}/disconnect/", {"confirm": "yes"})
    assert disconnect.status_code == 400 and b"enter your password" in disconnect.content
    with schema_context(alpha.schema_name):
        assert User.objects.get(pk=member.pk).role == Role.ADMIN
        assert User.objects.get(email=OWNER).role == Role.OWNER
        assert TikTokAccount.objects.filter(pk=account.pk).exists()


def test_changing_the_password_takes_the_current_one_and_counts_wrong_ones(alpha: Agency) -> None:
    owner = signed_in(alpha)
    new = {"new_password1": "a-new-password-for-me-5", "new_password2": "a-new-password-for-me-5"}
    for _ in range(4):
        wrong = owner.post("/password/", {"old_password": "guess", **new})
        assert wrong.status_code == 200 and b"Your old password was entered incorrectly" in wrong.content
    locked = owner.post("/password/", {"old_password": "guess", **new})
    assert locked.status_code == 429
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429
    assert owner.post("/password/", {"old_password": OWNER_PASSWORD, **new}).status_code == 429


# --- Idle sessions end ---


def test_activity_pushes_the_idle_timeout_back_and_an_idle_session_ends(alpha: Agency, settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 600
    owner = signed_in(alpha)
    key = owner.cookies["sessionid"].value
    with schema_context(alpha.schema_name):
        # Given the person was last seen 4 minutes ago, their session ends in 6
        session = Session.objects.get(session_key=key)
        data = session.get_decoded()
        data["seen_at"] = data["seen_at"] - 240
        Session.objects.filter(session_key=key).update(
            session_data=Session.objects.encode(data), expire_date=timezone.now() + dt.timedelta(minutes=6)
        )
    # When they open a page, it ends 10 minutes from now
    assert owner.get("/").status_code == 200
    with schema_context(alpha.schema_name):
        expiry = Session.objects.get(session_key=key).expire_date
    assert expiry > timezone.now() + dt.timedelta(minutes=9)
    # And once that passes without a request, they are signed out
    with schema_context(alpha.schema_name):
        Session.objects.filter(session_key=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    assert owner.get("/")["Location"].startswith("/login/")
