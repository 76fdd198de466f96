"""The media library in a real browser under the strict CSP: an image uploaded on the page shows
its thumbnail, typing in the search narrows the list in place (htmx), and the storage used is
shown."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import Stack, images_loaded, sign_in, snap
from tests.mp4 import mp4_bytes


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 140, 90)).save(out, "JPEG")
    return out.getvalue()


def test_upload_shows_a_thumbnail_and_the_search_narrows_the_list(
    stack: Stack, make_agency: Any, page: Any
) -> None:
    agency = make_agency()
    sign_in(page, stack, agency)
    page.get_by_role("link", name="Media", exact=True).click()
    expect(page.get_by_role("heading", name="Media library")).to_be_visible()
    expect(page.locator("#storage-used")).to_contain_text("Storage used: 0")

    upload = page.get_by_label("Upload a video or an image")
    for name, data, kind in (
        ("green loaf.jpg", jpeg(1080, 1350), "image/jpeg"),
        ("teaser.mp4", mp4_bytes(padding=20_000), "video/mp4"),
    ):
        upload.set_input_files({"name": name, "mimeType": kind, "buffer": data})
        page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.get_by_text(f"{name} is in the media library.")).to_be_visible()

    rows = page.locator("#library-results tbody tr")
    expect(rows).to_have_count(2)
    assert images_loaded(page.locator("#library-results img.library-thumb")) == [True, True]
    expect(page.locator("#library-results")).to_contain_text("1080×1350")  # noqa: RUF001
    expect(page.locator("#storage-used")).not_to_contain_text("Storage used: 0 bytes")

    # Typing narrows the list in place, and the address follows
    page.get_by_label("Name").fill("loaf")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("green loaf.jpg")
    expect(page).to_have_url(stack.url(agency, "/media/?q=loaf&label=&kind="))
    page.get_by_label("Kind").select_option("video")
    expect(page.locator("#library-results")).to_contain_text("Nothing matches")
    snap(page, "media-library")
    assert not page.console_errors, page.console_errors
