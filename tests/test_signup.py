"""The root domain: agency signup and its one-time welcome sign-in, and "find my agency"."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from django_tenants.utils import schema_context

from apps.users.models import Role, User
from apps.web.models import WelcomeToken
from config.tasks import TASK_MODULES
from tenants.models import Agency
from tenants.services import agency_create, agency_suspend
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text, mail_to

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-password-7"
SIGNUP = {
    "name": "Gamma Studio",
    "slug": "gamma",
    "owner_name": "Gina Gamma",
    "owner_email": "gina@gamma.example",
    "owner_password": NEW_PASSWORD,
}


def sign_up(**overrides: str) -> Any:
    return client_for(None).post("/signup/", {**SIGNUP, **overrides})


def welcome_path(response: Any) -> str:
    assert response.status_code == 302, response.content[:2000]
    return urlsplit(response["Location"]).path


def welcome(client: Client, path: str) -> Any:
    """Open the welcome link (it asks first, signing nobody in), then press its button."""
    asked = client.get(path)
    assert asked.status_code == 200, asked.content[:2000]
    assert b"Continue as" in asked.content and signed_in_email(asked) is None
    return client.post(path, follow=True)


def signed_in_email(response: Any) -> str | None:
    user = response.wsgi_request.user
    return user.email if user.is_authenticated else None


# --- Signup and the welcome link ---


def test_signup_creates_a_working_agency_and_signs_the_owner_in_on_its_subdomain_only(alpha: Agency) -> None:
    # When someone signs up on the root domain
    response = sign_up()

    # Then the agency exists and the browser is sent to its subdomain with a one-time link
    agency = Agency.objects.get(slug="gamma")
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}/" == agency.url
    assert location.path.startswith("/welcome/")
    with schema_context(agency.schema_name):
        owner = User.objects.get(email="gina@gamma.example")
        assert (owner.role, owner.name) == (Role.OWNER, "Gina Gamma")
    token = location.path.split("/")[2]
    assert not WelcomeToken.objects.filter(token_hash=token).exists()  # only its hash is stored

    # And following it on the new subdomain signs the owner in, with a welcome
    client = client_for(agency)
    landed = welcome(client, location.path)
    assert landed.redirect_chain == [("/", 302)]
    assert signed_in_email(landed) == "gina@gamma.example"
    assert b"Welcome to Postline!" in landed.content
    assert client.get("/").status_code == 200

    # But that session means nothing on another agency
    elsewhere = client_for(alpha)
    elsewhere.cookies["sessionid"] = client.cookies["sessionid"].value
    assert elsewhere.get("/").status_code == 302

    # And the owner can sign in with the chosen password later
    later = client_for(agency).post("/login/", {"username": "gina@gamma.example", "password": NEW_PASSWORD})
    assert later.status_code == 302


def test_a_welcome_link_works_once(alpha: Agency) -> None:
    path = welcome_path(sign_up())
    agency = Agency.objects.get(slug="gamma")
    assert signed_in_email(welcome(client_for(agency), path)) == "gina@gamma.example"

    replay = client_for(agency)
    response = replay.get(path)
    assert response.status_code == 400
    assert b"already been used" in response.content
    assert "sessionid" not in replay.cookies
    assert replay.get("/").status_code == 302


def test_an_expired_welcome_link_signs_nobody_in(alpha: Agency) -> None:
    path = welcome_path(sign_up())
    agency = Agency.objects.get(slug="gamma")
    # Two minutes and more pass
    now = timezone.now()
    WelcomeToken.objects.filter(agency=agency).update(
        created_at=now - dt.timedelta(minutes=3), expires_at=now - dt.timedelta(minutes=1)
    )

    client = client_for(agency)
    response = client.get(path)
    assert response.status_code == 400
    assert b"has expired" in response.content
    assert "sessionid" not in client.cookies
    assert client.get("/").status_code == 302


def test_a_welcome_link_is_refused_on_another_agency_and_still_works_on_its_own(alpha: Agency) -> None:
    path = welcome_path(sign_up())
    agency = Agency.objects.get(slug="gamma")

    # Presented on alpha's subdomain
    foreign = client_for(alpha)
    response = foreign.get(path)
    assert response.status_code == 400
    assert b"belongs to another agency" in response.content
    assert "sessionid" not in foreign.cookies
    assert foreign.get("/").status_code == 302

    # Not spent by that: its own agency still takes it
    assert signed_in_email(welcome(client_for(agency), path)) == "gina@gamma.example"


def test_a_made_up_welcome_link_signs_nobody_in(alpha: Agency) -> None:
    client = client_for(alpha)
    response = client.get("/welcome/not-a-real-token-at-all/")
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert "sessionid" not in client.cookies


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"slug": "alpha"}, "slug", "The address “alpha” is already taken"),
        ({"slug": "admin"}, "slug", "“admin” is reserved"),
        ({"slug": "Not A Slug!"}, "slug", "Use 3 to 40 characters"),
        ({"owner_email": "not-an-email"}, "owner_email", "Enter a valid email address for the owner."),
        ({"owner_password": "password"}, "owner_password", "This password is too common."),
        ({"owner_password": "1234"}, "owner_password", "This password is too short."),
        ({"name": ""}, "name", "Give the agency a name."),
    ],
)
def test_signup_refusals_show_next_to_their_field_keep_the_input_and_create_nothing(
    alpha: Agency, overrides: dict[str, str], field: str, message: str
) -> None:
    agencies_before = Agency.objects.count()
    response = sign_up(**overrides)

    assert response.status_code == 200
    html = response.content.decode()
    # The message is in the field's own error element, which the input points at
    error_start = html.index(f'<p class="field-error" id="id_{field}_error">')
    assert message in html[error_start : html.index("</p>", error_start)]
    assert f'aria-describedby="id_{field}_helptext id_{field}_error"' in html or (
        f'aria-describedby="id_{field}_error"' in html
    )
    # What was typed is still there (except the password, never echoed)
    data = {**SIGNUP, **overrides}
    for kept in ("name", "slug", "owner_name", "owner_email"):
        if data[kept]:
            assert f'name="{kept}" value="{escape(data[kept])}"' in html
    assert NEW_PASSWORD not in html
    assert Agency.objects.count() == agencies_before
    assert not Agency.objects.filter(slug=data["slug"].lower()).exclude(slug="alpha").exists()


def test_signup_page_explains_the_address_and_loads_its_script() -> None:
    response = client_for(None).get("/signup/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "your-agency</span>.localhost" in html
    assert "js/web-signup.js" in html
    assert "<script>" not in html and " style=" not in html and " onclick" not in html


def test_landing_page_offers_signup_and_finding_an_agency() -> None:
    html = client_for(None).get("/").content.decode()
    assert 'href="/signup/">Start your agency' in html
    assert 'href="/find/">Find my agency' in html


def test_the_root_domain_sign_in_address_leads_to_find_my_agency() -> None:
    response = client_for(None).get("/login/")
    assert (response.status_code, response["Location"]) == (302, "/find/")


# --- Find my agency ---


@pytest.fixture
def web_queue(jobs: Any) -> Any:
    """Runs what this test queued for the root site's workers, here (see the `jobs` fixture)."""
    return lambda: jobs("web")


def without_per_response_values(html: bytes) -> bytes:
    """The page minus its CSRF token and CSP nonce, which differ on every response."""
    return re.sub(rb'(nonce="|"X-CSRFToken": ")[^"]*"', rb'\1"', html)


def find(client: Client, email: str) -> Any:
    return client.post("/find/", {"email": email}, follow=True)


def test_workers_know_the_finder_job() -> None:
    assert "apps.web.tasks" in TASK_MODULES


def test_find_my_agency_answers_the_same_for_known_and_unknown_emails(
    web_queue: Any, smtp_server: SMTPServer
) -> None:
    known = find(client_for(None), "owner@shared.example")
    unknown = find(client_for(None), "nobody@nowhere.example")

    assert known.redirect_chain == unknown.redirect_chain == [("/find/sent/", 302)]
    assert known.status_code == unknown.status_code == 200
    assert without_per_response_values(known.content) == without_per_response_values(unknown.content)
    assert (
        b"If this address belongs to any Postline agency, we've emailed it a link to each one."
        in known.content
    )
    # The look-up happens in the background job, after the answer
    assert smtp_server.messages == []
    assert web_queue() == 2
    assert [mail_to(message) for message in smtp_server.messages] == [["owner@shared.example"]]


def test_find_my_agency_emails_the_sign_in_address_of_each_agency_and_only_those(
    alpha: Agency, beta: Agency, web_queue: Any, smtp_server: SMTPServer
) -> None:
    # Given owner@shared.example belongs to alpha and beta, was deactivated in gamma, and owns
    # a suspended agency; and other people belong to other agencies
    gamma = agency_create(
        slug="gamma", name="Gamma Studio", owner_email="gina@gamma.example", owner_password=OWNER_PASSWORD
    )
    with schema_context(gamma.schema_name):
        User.objects.create_user("owner@shared.example", OWNER_PASSWORD).delete()
    delta = agency_create(
        slug="delta", name="Delta Media", owner_email="owner@shared.example", owner_password=OWNER_PASSWORD
    )
    agency_suspend(agency=delta)

    # When they ask, with their address in another case
    find(client_for(None), "Owner@Shared.example")
    web_queue()

    # Then one email lists alpha's and beta's sign-in addresses, and nothing else
    (sent,) = smtp_server.messages
    assert mail_to(sent) == ["owner@shared.example"]
    text = mail_text(sent)
    urls = [line for line in text.splitlines() if line.startswith("http")]
    assert urls == [f"{alpha.url}login/", f"{beta.url}login/"]
    assert "Alpha Agency" in text and "Beta Agency" in text
    assert "gamma" not in text and "delta" not in text.lower()


def test_find_my_agency_sends_nothing_for_an_unknown_email(web_queue: Any, smtp_server: SMTPServer) -> None:
    find(client_for(None), "nobody@nowhere.example")
    assert web_queue() == 1
    assert smtp_server.messages == []


def test_find_my_agency_is_rate_limited_per_ip(web_queue: Any) -> None:
    client = client_for(None)
    for n in range(5):
        assert find(client, f"person{n}@nowhere.example").redirect_chain == [("/find/sent/", 302)]

    refused = client.post("/find/", {"email": "person5@nowhere.example"})

    assert refused.status_code == 429
    assert b"Too many look-ups from your network" in refused.content
    assert b"try again in 10 minutes" in refused.content
    assert int(refused["Retry-After"]) > 0
    assert b'value="person5@nowhere.example"' in refused.content
    assert web_queue() == 5  # the refused one was not looked up
    # Another network is not affected
    other = Client(HTTP_HOST="localhost", REMOTE_ADDR="10.1.2.3")
    assert find(other, "person6@nowhere.example").redirect_chain == [("/find/sent/", 302)]


def test_find_my_agency_asks_again_for_a_malformed_email(web_queue: Any) -> None:
    response = client_for(None).post("/find/", {"email": "not an email"})
    assert response.status_code == 200
    assert b'id="id_email_error"' in response.content
    assert b"Enter a valid email address" in response.content
    assert web_queue() == 0


def test_opening_a_welcome_link_signs_nobody_in_until_they_click(alpha: Agency) -> None:
    # Given someone signs up an agency and sends its welcome link to another person (login CSRF)
    path = welcome_path(sign_up())
    agency = Agency.objects.get(slug="gamma")

    # When that person's browser opens it (a link, an image, a redirect: a GET)
    visitor = client_for(agency)
    opened = visitor.get(path)

    # Then they are not signed in; the page says whom it would sign in and asks for a click
    assert opened.status_code == 200 and signed_in_email(opened) is None
    assert "sessionid" not in visitor.cookies
    assert b"as <strong>gina@gamma.example</strong>" in opened.content
    assert visitor.get("/").status_code == 302
    # And the link is not spent: a cross-site POST without the page's CSRF token does nothing
    forged = Client(HTTP_HOST=agency.primary_host, enforce_csrf_checks=True).post(path)
    assert forged.status_code == 403
    assert signed_in_email(welcome(client_for(agency), path)) == "gina@gamma.example"
