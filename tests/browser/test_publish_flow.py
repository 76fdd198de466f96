"""From connecting an account to watching its post go out, in a real browser under the strict CSP:
OAuth through the fake TikTok's consent page, the composer (upload with progress, TikTok's audit
rules, scheduling in the person's time zone), and the post's page updating itself until published."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.users.models import User
from tests.browser.conftest import PHONE, Stack, sign_in, snap
from tests.mp4 import mp4_bytes

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
BRANDED_NOT_PRIVATE = "Branded content visibility cannot be set to private."
DISCLOSURE_NEEDS_A_BRAND = "You need to indicate if your content promotes yourself, a third party, or both."


def fits_the_phone(page: Any) -> bool:
    """Nothing wider than a 375 px screen (no sideways scrolling)."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 860})
    return bool(width <= PHONE["width"])


def test_connect_compose_schedule_and_watch_it_publish(
    stack: Stack, stack_scheduler: None, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        User.objects.filter(email="owner@committed.example").update(time_zone="Europe/Paris")
    sign_in(page, stack, agency)

    # Connect Luna Bakes through TikTok's consent page
    page.goto(stack.url(agency, "/accounts/"))
    page.get_by_role("button", name="Connect a TikTok account").click()
    page.get_by_label("Luna Bakes").check()
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(stack.url(agency, "/accounts/"))
    expect(page.locator("#messages")).to_contain_text("Connected @luna.bakes")
    page.console_errors.clear()  # the fake TikTok's consent page has no favicon; our pages are checked below

    # Compose: choosing the account asks TikTok about the creator
    page.goto(stack.url(agency, "/posts/new/"))
    page.get_by_label("TikTok account").select_option(index=1)
    expect(page.locator("#creator-nickname")).to_have_text("Luna Bakes")
    privacy = page.get_by_label("Who can see this post")
    assert privacy.evaluate("s => [...s.options].map(o => o.value)") == [
        "",
        "PUBLIC_TO_EVERYONE",
        "MUTUAL_FOLLOW_FRIENDS",
        "SELF_ONLY",
    ]
    assert privacy.input_value() == ""

    # Refused: a file that is not a video, whatever its name says
    page.set_input_files(
        "#id_video", files=[{"name": "notes.mp4", "mimeType": "video/mp4", "buffer": b"shopping list: flour"}]
    )
    expect(page.locator("#video-error")).to_contain_text("This file is not an MP4, MOV or WebM video")
    # The refused upload was answered 400, which Chromium logs; nothing else may log an error.
    assert [e for e in page.console_errors if "400 (Bad Request)" not in e] == []
    page.console_errors.clear()

    # Upload through the file input: a real progress bar, then the preview
    page.set_input_files(
        "#id_video",
        files=[{"name": "morning-bake.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes(padding=2_000_000)}],
    )
    expect(page.locator("#upload-status")).to_have_text("Uploaded.")
    assert page.locator("#upload-bar").evaluate("bar => bar.value") == 100
    expect(page.locator("#media-summary")).to_contain_text("morning-bake.mp4 is uploaded: 12 s")
    expect(page.locator("#preview-video")).to_be_visible()
    # Refused: a caption over TikTok's 2,200 UTF-16 units (1,101 emoji are 2,202)
    page.get_by_label("Caption").fill("🍞" * 1101)
    expect(page.locator("#caption-error")).to_contain_text("TikTok allows at most 2,200")
    expect(page.get_by_role("button", name="Schedule")).to_be_disabled()
    page.get_by_label("Caption").fill("Morning bake 🍞 #sourdough")
    expect(page.locator("#caption-error")).to_be_hidden()
    expect(page.locator("#caption-used")).to_have_text("26")  # the emoji counts twice, as TikTok counts
    expect(page.locator("#preview-caption")).to_have_text("Morning bake 🍞 #sourdough")

    # Refused: scheduling without choosing who can see it (the server says so, next to the field)
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#field-privacy_level .field-error")).to_have_text("Choose who can see this post.")
    expect(page.locator("#media-summary")).to_contain_text("morning-bake.mp4")  # the upload is kept
    expect(page.get_by_label("Caption")).to_have_value("Morning bake 🍞 #sourdough")

    # Refused: branded content that only the creator could see
    page.get_by_label("Who can see this post").select_option("SELF_ONLY")
    page.get_by_label("This post promotes a brand, a product or a service").check()
    expect(page.locator("#field-commercial_disclosure .field-error")).to_have_text(DISCLOSURE_NEEDS_A_BRAND)
    expect(page.get_by_role("button", name="Schedule")).to_be_disabled()
    page.get_by_label("Branded content").check()
    expect(page.locator("#field-privacy_level .field-error")).to_have_text(BRANDED_NOT_PRIVATE)
    expect(page.locator("#consent")).to_have_text(
        "By posting, you agree to TikTok's Branded Content Policy and Music Usage Confirmation."
    )
    expect(page.get_by_role("button", name="Schedule")).to_be_disabled()
    expect(page.get_by_role("button", name="Publish now")).to_be_disabled()
    page.get_by_label("This post promotes a brand, a product or a service").uncheck()
    expect(page.locator("#consent")).to_have_text(
        "By posting, you agree to TikTok's Music Usage Confirmation."
    )

    # Schedule it about 20 seconds ahead, in the person's own time zone
    page.get_by_label("Who can see this post").select_option("PUBLIC_TO_EVERYONE")
    expect(page.locator("#field-privacy_level .field-error")).to_be_hidden()
    assert page.get_by_label("Time zone").input_value() == "Europe/Paris"
    when = (timezone.now() + dt.timedelta(seconds=20)).astimezone(PARIS)
    page.get_by_label("Date").fill(when.date().isoformat())
    page.get_by_label("Time", exact=True).fill(when.strftime("%H:%M:%S"))
    snap(page, "composer")
    assert fits_the_phone(page)
    page.get_by_role("button", name="Schedule").click()

    # The post's page follows the publish without reloading
    expect(page.locator("#messages")).to_contain_text("Scheduled.")
    expect(page.locator("#post-status-badge")).to_have_text("Scheduled")
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )
    expect(page.locator("#post-status-badge")).to_have_text("Published", timeout=60_000)
    expect(page.locator("#post-status")).not_to_have_attribute("hx-trigger", "every 2s", timeout=10_000)
    assert navigations == []
    assert page.locator("#attempts tbody tr").count() >= 3  # creator info, init, upload, ...
    snap(page, "post-detail")
    assert fits_the_phone(page)

    page.goto(stack.url(agency, "/posts/"))
    expect(page.locator("tbody tr").first).to_contain_text("Published")
    expect(page.locator("tbody tr").first).to_contain_text("Morning bake")
    snap(page, "posts-list")
    assert fits_the_phone(page)

    # And it is on the calendar, on its day, shown as published, linking to its page
    page.goto(stack.url(agency, "/calendar/"))
    entry = page.locator("a.cal-post", has_text="Morning bake")
    expect(entry).to_have_class("cal-post status-published")
    entry.click()
    expect(page.locator("#post-status-badge")).to_have_text("Published")
    assert page.console_errors == []
