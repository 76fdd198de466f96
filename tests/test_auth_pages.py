"""Signing in (with lockout), signing out and resetting a password on an agency's subdomain."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text, mail_to
from tests.test_signup import without_per_response_values

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
EDITOR = "editor@alpha.example"
NEW_PASSWORD = "a-fresh-password-for-alpha-9"
OTHER_IP = "10.9.8.7"


@pytest.fixture
def editor(in_alpha: Agency) -> User:
    return User.objects.create_user(EDITOR, OWNER_PASSWORD, role=Role.EDITOR)


def sign_in(client: Client, email: str, password: str) -> Any:
    return client.post("/login/", {"username": email, "password": password})


# --- Lockout ---


def test_five_wrong_passwords_lock_the_email_even_against_the_right_password(
    alpha: Agency, editor: User
) -> None:
    client = client_for(alpha)
    # Given four wrong passwords, each refused the ordinary way
    for _ in range(4):
        response = sign_in(client, OWNER, "not-the-password")
        assert response.status_code == 200
        assert b"Please enter a correct email address and password" in response.content

    # When the fifth is wrong too, the email is locked
    fifth = sign_in(client, OWNER, "not-the-password")
    assert fifth.status_code == 429
    assert b"Too many failed sign-in attempts for this email" in fifth.content
    assert b"about 15 minutes from now" in fifth.content
    assert int(fifth["Retry-After"]) > 800

    # Then even the right password is refused, from anywhere, with the message
    for somewhere in (client, Client(HTTP_HOST=alpha.primary_host, REMOTE_ADDR=OTHER_IP)):
        refused = sign_in(somewhere, OWNER, OWNER_PASSWORD)
        assert refused.status_code == 429
        assert b"signing in is paused until" in refused.content
        assert f'value="{OWNER}"'.encode() in refused.content
        assert somewhere.get("/").status_code == 302

    # And the lock is in the audit log, once
    with schema_context(alpha.schema_name):
        locked = AuditLog.objects.filter(action="login.locked")
        assert [(e.changes["email"], e.changes["scope"]) for e in locked] == [(OWNER, "email")]

    # But another user of the same agency signs in as usual
    assert sign_in(client_for(alpha), EDITOR, OWNER_PASSWORD).status_code == 302


def test_the_lock_is_per_agency(alpha: Agency, beta: Agency) -> None:
    for _ in range(5):
        sign_in(client_for(alpha), OWNER, "not-the-password")
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429
    assert sign_in(client_for(beta), OWNER, OWNER_PASSWORD).status_code == 302


def test_after_the_lock_period_the_user_signs_in(alpha: Agency, settings: Any) -> None:
    settings.AXES_COOLOFF_TIME = dt.timedelta(seconds=1)
    for _ in range(5):
        sign_in(client_for(alpha), OWNER, "not-the-password")
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429

    time.sleep(1.2)  # the lock's own period, shortened

    client = client_for(alpha)
    assert sign_in(client, OWNER, OWNER_PASSWORD).status_code == 302
    assert client.get("/").status_code == 200


def test_a_successful_sign_in_forgets_earlier_failures(alpha: Agency) -> None:
    for _ in range(4):
        sign_in(client_for(alpha), OWNER, "not-the-password")
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 302
    for _ in range(4):
        assert sign_in(client_for(alpha), OWNER, "not-the-password").status_code == 200
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 302


def test_unknown_emails_lock_like_known_ones(alpha: Agency) -> None:
    # A lock must not tell whether an account exists
    for _ in range(4):
        assert sign_in(client_for(alpha), "ghost@nowhere.example", "guess").status_code == 200
    locked = sign_in(client_for(alpha), "ghost@nowhere.example", "guess")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts for this email" in locked.content


def test_many_failures_from_one_network_lock_that_network(alpha: Agency, settings: Any) -> None:
    settings.LOGIN_LOCKOUT_IP_FAILURES = 3
    attacker = Client(HTTP_HOST=alpha.primary_host, REMOTE_ADDR=OTHER_IP)
    for email in ("someone@else.example", "ghost@nowhere.example"):
        assert sign_in(attacker, email, "guess").status_code == 200
    third = sign_in(attacker, EDITOR, "guess")
    assert third.status_code == 429
    assert b"Too many failed sign-in attempts for your network" in third.content

    # Everyone is refused from that network; the owner elsewhere is not
    assert sign_in(attacker, OWNER, OWNER_PASSWORD).status_code == 429
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 302


# --- Signing out ---


def test_sign_out_is_a_post_and_says_so(alpha: Agency) -> None:
    client = client_for(alpha)
    assert sign_in(client, OWNER, OWNER_PASSWORD).status_code == 302

    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200  # a GET signs nobody out

    response = client.post("/logout/", follow=True)
    assert response.redirect_chain == [("/login/", 302)]
    assert b"You have signed out." in response.content
    assert client.get("/").status_code == 302


def test_the_sign_in_page_links_to_password_reset_and_find_my_agency(alpha: Agency) -> None:
    html = client_for(alpha).get("/login/").content.decode()
    assert 'href="/password-reset/"' in html
    assert 'href="http://localhost:8000/find/"' in html or 'href="http://localhost/find/"' in html


# --- Password reset ---


def test_password_reset_end_to_end(alpha: Agency, beta: Agency, jobs: Any, smtp_server: SMTPServer) -> None:
    client = client_for(alpha)
    # Given the owner asks for a reset on alpha
    asked = client.post("/password-reset/", {"email": "Owner@Shared.example"}, follow=True)
    assert asked.redirect_chain == [("/password-reset/sent/", 302)]
    assert b"we've emailed it a link to choose a new password" in asked.content
    # The email is a worker's job, after the answer
    assert smtp_server.messages == []
    assert jobs("web") == 1

    # Then one email carries a link on alpha's own subdomain
    assert len(smtp_server.messages) == 1
    assert mail_to(smtp_server.messages[0]) == [OWNER]
    assert "Alpha Agency" in smtp_server.messages[0]["Subject"]
    match = re.search(r"https?://\S+", mail_text(smtp_server.messages[0]))
    assert match is not None
    link = urlsplit(match.group(0))
    assert link.hostname == alpha.primary_host
    assert link.path.startswith("/password-reset/")

    # That link means nothing on beta
    assert b"This reset link cannot be used" in client_for(beta).get(link.path, follow=True).content

    # When the owner follows it and chooses a new password
    form = client.get(link.path, follow=True)
    assert b"Choose a new password" in form.content
    new_password = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    done = client.post(form.redirect_chain[-1][0], new_password, follow=True)
    assert done.redirect_chain == [("/password-reset/done/", 302)]
    assert b"Your password is changed" in done.content

    # Then the new password works and the old one does not
    assert sign_in(client_for(alpha), OWNER, NEW_PASSWORD).status_code == 302
    old = sign_in(client_for(alpha), OWNER, OWNER_PASSWORD)
    assert old.status_code == 200
    assert b"Please enter a correct email address and password" in old.content
    # And the link is spent
    assert b"This reset link cannot be used" in client_for(alpha).get(link.path, follow=True).content
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.filter(action="password.reset", actor_email=OWNER).count() == 1


def test_password_reset_answers_the_same_for_an_unknown_email(
    alpha: Agency, jobs: Any, smtp_server: SMTPServer
) -> None:
    known = client_for(alpha).post("/password-reset/", {"email": OWNER}, follow=True)
    unknown = client_for(alpha).post("/password-reset/", {"email": "ghost@nowhere.example"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain
    assert without_per_response_values(known.content) == without_per_response_values(unknown.content)
    # Neither answer waited for a look-up or an email: both are a worker's job
    assert smtp_server.messages == []
    assert jobs("web") == 2
    assert [mail_to(message) for message in smtp_server.messages] == [[OWNER]]


def test_a_password_reset_lifts_the_lock(alpha: Agency, jobs: Any, smtp_server: SMTPServer) -> None:
    for _ in range(5):
        sign_in(client_for(alpha), OWNER, "not-the-password")
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429

    client = client_for(alpha)
    client.post("/password-reset/", {"email": OWNER})
    jobs("web")
    match = re.search(r"https?://\S+", mail_text(smtp_server.messages[0]))
    assert match is not None
    form = client.get(urlsplit(match.group(0)).path, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert sign_in(client_for(alpha), OWNER, NEW_PASSWORD).status_code == 302
