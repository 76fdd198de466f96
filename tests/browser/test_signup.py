"""Signing up in a real browser: from the root domain to the new agency's dashboard, signed in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import expect

from tenants.models import Agency
from tenants.services import agency_delete, agency_purge
from tests.browser.conftest import Stack, snap

PASSWORD = "a-browser-made-password-3"


@pytest.fixture
def purge_signups(django_db_blocker: Any) -> Iterator[list[str]]:
    """Slugs of agencies the browser creates (committed by the server); purged after the test."""
    slugs: list[str] = []
    yield slugs
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        for agency in Agency.objects.filter(slug__in=slugs):
            agency_purge(agency=agency_delete(agency=agency))


def test_sign_up_on_the_root_domain_and_land_signed_in_on_the_new_agency(
    stack: Stack, page: Any, purge_signups: list[str]
) -> None:
    slug = f"b-{uuid.uuid4().hex[:10]}"
    purge_signups.append(slug)
    agency = SimpleNamespace(slug=slug)

    # Given the landing page
    page.goto(stack.url(None, "/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Schedule and publish TikTok videos")
    snap(page, "landing")

    # When the visitor starts an agency, the address follows the name until they choose one
    page.get_by_role("link", name="Start your agency").first.click()
    expect(page).to_have_url(stack.url(None, "/signup/"))
    page.get_by_label("Agency name").fill("Browser Made Agency")
    preview = page.locator("[data-slug-preview]")
    expect(page.get_by_label("Address")).to_have_value("browser-made-agency")
    expect(preview).to_have_text("browser-made-agency")
    page.get_by_label("Address").fill(slug)
    expect(preview).to_have_text(slug)
    page.get_by_label("Your name").fill("Bea Browser")
    page.get_by_label("Your email").fill("bea@browser.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    snap(page, "signup")

    # While the agency is being created the page says so. (To look at that moment, the test holds
    # the first submission back in the page, after the page's own handler has run, then sends it.)
    page.evaluate("() => window.addEventListener('submit', (e) => e.preventDefault(), {once: true})")
    page.get_by_role("button", name="Create my agency").click()
    expect(page.get_by_role("button", name="Creating your agency…")).to_be_disabled()
    expect(page.get_by_role("status")).to_contain_text("Creating your agency…")
    page.evaluate("() => document.getElementById('signup-form').submit()")

    # Then the browser lands on the new agency's subdomain, which asks before signing its owner in
    page.get_by_role("button", name="Continue as bea@browser.example").click()
    page.wait_for_url(stack.url(agency, "/"))
    expect(page.locator("#messages")).to_contain_text("Welcome to Postline!")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.locator(".usermenu summary")).to_have_text("Bea")

    # And the owner reaches the settings and renames the agency
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(stack.url(agency, "/settings/"))
    page.get_by_label("Agency name").fill("Browser Made Studio")
    page.get_by_label("Default time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#messages")).to_contain_text("Settings saved.")
    expect(page.locator(".agency-name")).to_have_text("Browser Made Studio")
    snap(page, "settings")

    assert page.console_errors == []


def test_signup_refusal_keeps_what_was_typed(stack: Stack, page: Any) -> None:
    page.goto(stack.url(None, "/signup/"))
    page.get_by_label("Agency name").fill("Admin Agency")
    page.get_by_label("Address").fill("admin")
    page.get_by_label("Your email").fill("someone@browser.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create my agency").click()

    address = page.get_by_label("Address")
    expect(address).to_have_value("admin")
    expect(address).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_slug_error")).to_contain_text("“admin” is reserved")
    expect(page.get_by_label("Your email")).to_have_value("someone@browser.example")
    expect(page.get_by_role("button", name="Create my agency")).to_be_enabled()
    assert page.console_errors == []
