"""The shell every page shares: sign-in, navigation, messages, and a strict CSP that nothing breaks."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Stack, sign_in, snap


def test_sign_in_lands_on_the_agency_with_working_htmx_and_no_csp_errors(
    stack: Stack, make_agency: Any, page: Any
) -> None:
    agency = make_agency()
    page.goto(stack.url(agency, "/"))
    assert "/login/" in page.url
    snap(page, "login")

    sign_in(page, stack, agency)

    assert page.get_by_role("navigation", name="Main").is_visible()
    assert agency.name in page.content()
    assert page.evaluate("typeof window.htmx") == "object"  # served from our origin, with the nonce
    csp = page.goto(stack.url(agency, "/")).headers.get("content-security-policy", "")
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "nonce-" in csp
    assert page.console_errors == []


def test_wrong_password_says_so_and_keeps_the_email(stack: Stack, make_agency: Any, page: Any) -> None:
    agency = make_agency()
    page.goto(stack.url(agency, "/login/"))
    page.get_by_label("Email").fill("owner@committed.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_label("Email").input_value() == "owner@committed.example"


def test_the_agency_admin_renders_without_csp_errors(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    from django.db import connection
    from django_tenants.utils import schema_context

    from tests.factories import PostFactory

    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        post = PostFactory(caption="Seen in the admin")
    connection.set_schema_to_public()
    sign_in(page, stack, agency)

    for path in ("/admin/", "/admin/posts/post/", f"/admin/posts/post/{post.pk}/change/"):
        page.goto(stack.url(agency, path))
        page.wait_for_load_state("networkidle")
        assert page.console_errors == [], path
    assert page.get_by_text("Seen in the admin").first.is_visible()
