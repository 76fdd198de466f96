"""Two-step sign-in in a real browser under the strict CSP, at desktop and phone width: an operator
and an agency owner each set up an authenticator from the QR code page and sign in with a code;
a wrong code and a replayed code are refused; a recovery code works once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.users.models import User
from tests.browser.conftest import Stack, images_loaded, snap
from tests.browser.test_team import another_browser, fits_the_phone
from tests.conftest import OWNER_PASSWORD, totp_from_secret, totp_next

OWNER = "owner@committed.example"
OPERATOR = "operator-mfa@postline.example"


@pytest.fixture
def operator(django_db_blocker: Any) -> Iterator[str]:
    """An operator of the root domain, committed (the server sees it); removed after the test."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        User.objects.create_superuser(OPERATOR, OWNER_PASSWORD)
    yield OPERATOR
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        User.all_objects.filter(email=OPERATOR).delete()


def password_step(page: Any, url: str, email: str, *, email_label: str = "Email") -> None:
    page.goto(url)
    page.get_by_label(email_label).fill(email)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in" if email_label == "Email" else "Log in").click()
    page.wait_for_load_state()


def set_up_authenticator(page: Any, name: str) -> list[str]:
    """On the set-up page: the QR code shows, a wrong code is refused, the right one turns it on;
    returns the recovery codes the page shows once."""
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    qr = page.get_by_role("img", name="QR code to add Postline to your authenticator app")
    expect(qr).to_be_visible()
    assert images_loaded(qr) == [True]  # the SVG loaded under the CSP
    assert fits_the_phone(page)
    snap(page, f"{name}-two-step-setup")
    secret = page.locator("[data-secret]").inner_text()

    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("That code is not the one your app shows now")).to_be_visible()

    page.get_by_label("Code from the app").fill(totp_from_secret(secret))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem").all_inner_texts()
    assert len(codes) == 10
    assert fits_the_phone(page)
    snap(page, f"{name}-recovery-codes")
    return codes


def code_step(page: Any, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_an_operator_and_an_owner_sign_in_with_two_steps(
    stack: Stack, make_agency: Any, browser: Any, operator: str, django_db_blocker: Any
) -> None:
    agency = make_agency()

    # --- The operator: the admin sends them to set it up first ---
    with another_browser(browser) as page:
        password_step(page, stack.url(None, "/admin/login/"), operator, email_label="Email address")
        expect(page).to_have_url(stack.url(None, "/account/two-step/?next=%2Fadmin%2F"))
        expect(page.get_by_role("status")).to_contain_text("Operators must use two-step sign-in.")
        set_up_authenticator(page, "operator")
        page.get_by_role("link", name="I saved them").click()
        expect(page.get_by_role("heading", name="Agencies and operators")).to_be_visible()
        assert page.console_errors == []

    # And next time the admin takes a code: a wrong one is refused, the right one lets them in
    with another_browser(browser) as page:
        password_step(page, stack.url(None, "/admin/login/"), operator, email_label="Email address")
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        code_step(page, "123456")
        expect(page.get_by_text("That code is not right")).to_be_visible()
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            code = totp_next(User.objects.get(email=operator))
        code_step(page, code)
        expect(page.get_by_role("heading", name="Agencies and operators")).to_be_visible()

    # --- The owner: turns it on from their menu ---
    with another_browser(browser) as page:
        password_step(page, stack.url(agency, "/login/"), OWNER)
        expect(page).to_have_url(stack.url(agency, "/"))
        page.locator(".usermenu summary").click()
        page.get_by_role("link", name="Two-step sign-in").click()
        codes = set_up_authenticator(page, "owner")
        page.get_by_role("link", name="I saved them").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()

    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        owner_code = totp_next(User.objects.get(email=OWNER))

    # Signing in takes the code; the page offers nothing else meanwhile
    with another_browser(browser) as page:
        password_step(page, stack.url(agency, "/login/"), OWNER)
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
        page.goto(stack.url(agency, "/accounts/"))
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        assert fits_the_phone(page)
        snap(page, "two-step-code")
        code_step(page, owner_code)
        expect(page).to_have_url(stack.url(agency, "/accounts/"))
        assert page.console_errors == []

    # The same code again is refused
    with another_browser(browser) as page:
        password_step(page, stack.url(agency, "/login/"), OWNER)
        code_step(page, owner_code)
        expect(page.get_by_text("it was used already")).to_be_visible()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()

        # A recovery code works instead, and says it is spent
        code_step(page, codes[0])
        expect(page).to_have_url(stack.url(agency, "/"))
        expect(page.locator("#messages")).to_contain_text("You signed in with a recovery code")
        expect(page.locator("#messages")).to_contain_text("9 recovery codes left")

    # But only once
    with another_browser(browser) as page:
        password_step(page, stack.url(agency, "/login/"), OWNER)
        code_step(page, codes[0])
        expect(page.get_by_text("That code is not right")).to_be_visible()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
