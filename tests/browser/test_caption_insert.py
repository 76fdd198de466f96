"""A caption template with an emoji, inserted in the middle of a caption in a real browser under
the strict CSP: it lands at the cursor and the counter counts as TikTok does (UTF-16 units)."""

from __future__ import annotations

import uuid
from typing import Any

from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.captions.models import CaptionSnippet, SnippetKind
from tests.browser.conftest import Stack, sign_in
from tests.factories import TikTokAccountFactory


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_template_goes_in_at_the_cursor_and_the_counter_stays_exact(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account = TikTokAccountFactory(
            username="luna.bakes", client_label="Bakery", open_id=f"l-{uuid.uuid4().hex}"
        )
        TikTokAccountFactory(username="garage", client_label="Garage", open_id=f"g-{uuid.uuid4().hex}")
        CaptionSnippet.objects.create(kind=SnippetKind.TEMPLATE, name="Sign-off", text="See you 👋 soon")
        CaptionSnippet.objects.create(
            kind=SnippetKind.HASHTAGS, name="Cars", text="#cars", client_label="Garage"
        )
    sign_in(page, stack, agency)
    page.goto(stack.url(agency, "/posts/new/"))
    page.get_by_label("TikTok account").select_option(str(account.pk))
    caption = page.locator("#id_caption")
    caption.fill("Fresh loaves today")
    caption.evaluate("el => el.setSelectionRange(6, 6)")  # after "Fresh "

    # The other client's hashtags (offered for its own accounts) are not offered for this one.
    expect(page.locator("#caption-snippet option", has_text="Cars")).to_be_disabled()
    page.get_by_label("Template or hashtag group").select_option(label="Caption template: Sign-off")
    page.get_by_role("button", name="Insert at the cursor").click()

    expected = "Fresh See you 👋 soon loaves today"
    expect(caption).to_have_value(expected)
    assert (
        caption.evaluate("el => el.selectionStart") == len("Fresh See you 👋 soon ".encode("utf-16-le")) // 2
    )
    expect(page.locator("#caption-used")).to_have_text(str(utf16(expected)))
    assert utf16(expected) == len(expected) + 1  # the emoji counts twice
    expect(page.locator("#preview-caption")).to_have_text(expected)
    assert not page.console_errors, page.console_errors
