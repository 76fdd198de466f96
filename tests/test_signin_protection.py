"""Sign-in protection on every surface that checks a password (django-axes), the throttles on the
forms that send mail, and the client's real address behind trusted proxies."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.team.models import Invitation
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
OPERATOR = "operator@postline.example"
PROXY = "10.0.0.5"


def sign_in(client: Client, email: str, password: str, path: str = "/login/") -> Any:
    return client.post(path, {"username": email, "password": password})


def from_ip(agency: Agency | None, ip: str, **headers: str) -> Client:
    host = agency.primary_host if agency is not None else "localhost"
    return Client(HTTP_HOST=host, REMOTE_ADDR=ip, **headers)


# --- One lockout on every surface ---


def test_the_agency_admin_sign_in_locks_like_the_sign_in_page(alpha: Agency) -> None:
    client = client_for(alpha)
    for _ in range(4):
        refused = sign_in(client, OWNER, "not-the-password", "/admin/login/")
        assert refused.status_code == 200
        assert b"Please enter the correct" in refused.content

    locked = sign_in(client, OWNER, "not-the-password", "/admin/login/")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts for this email" in locked.content

    # The right password is refused there and on the sign-in page: one lock for both
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD, "/admin/login/").status_code == 429
    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.filter(action="login.locked").count() == 1


def test_the_operators_admin_locks_and_its_lock_is_not_an_agencys(alpha: Agency) -> None:
    User.objects.create_superuser(OPERATOR, OWNER_PASSWORD)
    for _ in range(5):
        sign_in(client_for(None), OPERATOR, "not-the-password", "/admin/login/")

    refused = sign_in(client_for(None), OPERATOR, OWNER_PASSWORD, "/admin/login/")
    assert refused.status_code == 429
    assert b"Signing in is paused" in refused.content
    assert b"_auth_user_id" not in refused.content
    assert client_for(None).get("/admin/").status_code == 302  # still signed out

    # The same address in an agency is another person with another lock
    with schema_context(alpha.schema_name):
        User.objects.create_user(OPERATOR, OWNER_PASSWORD)
    assert sign_in(client_for(alpha), OPERATOR, OWNER_PASSWORD).status_code == 302


def test_spellings_of_one_address_share_one_count(alpha: Agency) -> None:
    # Django's sign-in form folds compatibility characters (NFKC) and we ignore case, so these
    # all reach the owner's account (\uff4f is a fullwidth o): they must all count against it.
    spellings = [
        "OWNER@shared.example",
        "\uff4fwner@shared.example",
        " Owner@Shared.Example ",
        "owner@\uff53hared.example",
    ]
    for spelling in spellings:
        assert sign_in(client_for(alpha), spelling, "not-the-password").status_code == 200
    fifth = sign_in(client_for(alpha), "owner@shared.\uff45xample", "not-the-password")
    assert fifth.status_code == 429

    assert sign_in(client_for(alpha), OWNER, OWNER_PASSWORD).status_code == 429


def test_a_fullwidth_spelling_signs_in_like_the_address(alpha: Agency) -> None:
    assert (
        sign_in(
            client_for(alpha), "\uff2f\uff37\uff2e\uff25\uff32@shared.example", OWNER_PASSWORD
        ).status_code
        == 302
    )


def test_reset_links_that_do_not_work_lock_the_network_out_of_reset_links(
    alpha: Agency, jobs: Any, settings: Any, smtp_server: SMTPServer
) -> None:
    settings.LOGIN_LOCKOUT_IP_FAILURES = 3
    guesser = from_ip(alpha, "198.51.100.20")
    for n in range(2):
        assert b"This reset link cannot be used" in guesser.get(f"/password-reset/MQ/guess-{n}/").content
    third = guesser.get("/password-reset/MQ/guess-2/")
    assert third.status_code == 429
    assert b"Signing in is paused" in third.content

    # Then even a real link is refused from that network, and works from another
    client_for(alpha).post("/password-reset/", {"email": OWNER})
    jobs("web")
    match = re.search(r"https?://\S+", mail_text(smtp_server.messages[0]))
    assert match is not None
    path = urlsplit(match.group(0)).path
    refused = guesser.get(path)
    assert refused.status_code == 429
    assert b"Too many failed sign-in attempts for your network" in refused.content
    assert client_for(alpha).get(path, follow=True).redirect_chain[-1][0].endswith("/set-password/")


# --- Throttles on the forms that send mail or create things ---


def test_password_reset_is_throttled_per_address_across_networks(alpha: Agency, jobs: Any) -> None:
    for n in range(3):
        asked = from_ip(alpha, f"198.51.100.{n + 1}").post("/password-reset/", {"email": OWNER})
        assert asked.status_code == 302

    refused = from_ip(alpha, "198.51.100.9").post("/password-reset/", {"email": "Owner@Shared.example"})
    assert refused.status_code == 429
    assert b"Too many reset requests for this address" in refused.content
    assert int(refused["Retry-After"]) > 0
    assert jobs("web") == 3  # the refused request sent nothing
    # An unknown address is counted the same way: the answer tells nothing
    for n in range(3):
        from_ip(alpha, f"198.51.100.{n + 1}").post("/password-reset/", {"email": "ghost@nowhere.example"})
    ghost = from_ip(alpha, "198.51.100.9").post("/password-reset/", {"email": "ghost@nowhere.example"})
    assert ghost.status_code == 429


def test_password_reset_is_throttled_per_network(
    alpha: Agency, jobs: Any, settings: Any, smtp_server: SMTPServer
) -> None:
    settings.THROTTLES = {**settings.THROTTLES, "password-reset": {"ip": 2, "address": 3, "window": 900}}
    client = client_for(alpha)
    for n in range(2):
        assert client.post("/password-reset/", {"email": f"person{n}@nowhere.example"}).status_code == 302
    refused = client.post("/password-reset/", {"email": OWNER})
    assert refused.status_code == 429
    assert b"Too many reset requests from your network" in refused.content
    jobs("web")
    assert smtp_server.messages == []


def test_find_my_agency_is_throttled_per_address(jobs: Any) -> None:
    for n in range(3):
        assert from_ip(None, f"198.51.100.{n + 1}").post("/find/", {"email": OWNER}).status_code == 302
    refused = from_ip(None, "198.51.100.9").post("/find/", {"email": "OWNER@shared.example"})
    assert refused.status_code == 429
    assert b"Too many look-ups for this address" in refused.content
    assert jobs("web") == 3


def signed_in_owner(agency: Agency) -> Client:
    client = client_for(agency)
    assert sign_in(client, OWNER, OWNER_PASSWORD).status_code == 302
    return client


def test_invitations_are_throttled_per_address(
    alpha: Agency, jobs: Any, django_capture_on_commit_callbacks: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in_owner(alpha)
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/team/invite/", {"email": "nora@example.com", "role": Role.EDITOR})
    with schema_context(alpha.schema_name):
        invitation = Invitation.objects.get(email="nora@example.com")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            owner.post(f"/team/invitations/{invitation.pk}/resend/")
    assert jobs("team") == 3

    with django_capture_on_commit_callbacks(execute=True):
        refused = owner.post(f"/team/invitations/{invitation.pk}/resend/", follow=True)
    assert b"Too many invitations for this address" in refused.content
    assert jobs("team") == 0
    assert len(smtp_server.messages) == 3


def test_the_invitation_email_is_a_workers_job_and_its_message_holds_no_link(
    alpha: Agency, django_capture_on_commit_callbacks: Any, jobs: Any, smtp_server: SMTPServer
) -> None:
    owner = signed_in_owner(alpha)
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/team/invite/", {"email": "nora@example.com", "role": Role.EDITOR})
    assert smtp_server.messages == []  # the page did not wait for the mail server

    broker = dramatiq.get_broker()
    queued = broker.client.lrange(f"{broker.namespace}:team", 0, -1)  # type: ignore[attr-defined]
    messages = [broker.client.hget(f"{broker.namespace}:team.msgs", key) for key in queued]  # type: ignore[attr-defined]
    assert len(messages) == 1 and b"/team/join/" not in messages[0]

    assert jobs("team") == 1
    (sent,) = smtp_server.messages
    match = re.search(r"/team/join/[^/\s]+/", mail_text(sent))
    assert match is not None and match.group(0).encode() not in messages[0]
    assert client_for(alpha).get(match.group(0)).status_code == 200


# --- The client's address behind trusted proxies ---


def test_behind_a_trusted_proxy_the_lockout_and_the_audit_read_the_client(
    alpha: Agency, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_LOCKOUT_IP_FAILURES = 3

    def via_proxy(client_ip: str) -> Client:
        return from_ip(alpha, PROXY, HTTP_X_FORWARDED_FOR=f"{client_ip}, 10.0.0.9")

    # Given one client guesses at three addresses through our proxy
    attacker = via_proxy("203.0.113.7")
    for email in ("a@nowhere.example", "b@nowhere.example"):
        assert sign_in(attacker, email, "guess").status_code == 200
    assert sign_in(attacker, "c@nowhere.example", "guess").status_code == 429

    # Then that client is locked out, not everyone behind the proxy
    assert sign_in(via_proxy("203.0.113.7"), OWNER, OWNER_PASSWORD).status_code == 429
    assert sign_in(via_proxy("198.51.100.4"), OWNER, OWNER_PASSWORD).status_code == 302
    # And the audit log names the client, never the proxy
    with schema_context(alpha.schema_name):
        failed = AuditLog.objects.filter(action="login.failed")
        assert {entry.ip for entry in failed} == {"203.0.113.7"}
        locked = AuditLog.objects.get(action="login.locked")
        assert (locked.ip, locked.changes["scope"]) == ("203.0.113.7", "ip")
        assert AuditLog.objects.get(action="login.succeeded").ip == "198.51.100.4"


def test_behind_a_trusted_proxy_the_throttles_read_the_client(settings: Any, jobs: Any) -> None:
    settings.TRUSTED_PROXIES = [PROXY]
    settings.THROTTLES = {**settings.THROTTLES, "find-agency": {"ip": 1, "address": 9, "window": 600}}
    for n in range(3):  # three clients behind the same proxy each get their look-up
        client = from_ip(None, PROXY, HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
        assert client.post("/find/", {"email": f"p{n}@nowhere.example"}).status_code == 302
    again = from_ip(None, PROXY, HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert again.post("/find/", {"email": "p9@nowhere.example"}).status_code == 429


def test_a_client_cannot_choose_its_address_by_sending_the_header(alpha: Agency, settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_LOCKOUT_IP_FAILURES = 2
    # Not from a trusted proxy: the header is the client's own words and means nothing
    for n in range(2):
        spoofer = from_ip(alpha, "198.51.100.66", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 10}")
        sign_in(spoofer, f"x{n}@nowhere.example", "guess")
    fresh_claim = from_ip(alpha, "198.51.100.66", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert sign_in(fresh_claim, OWNER, OWNER_PASSWORD).status_code == 429
    with schema_context(alpha.schema_name):
        assert {e.ip for e in AuditLog.objects.filter(action="login.failed")} == {"198.51.100.66"}
