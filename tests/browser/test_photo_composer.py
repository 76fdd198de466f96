"""The photo composer in a real browser under the strict CSP, at 1280 and 375 px: three photos
added to the carousel (two at once; an oversized one refused, naming it), a cover chosen that
follows its photo when the carousel is reordered, the preview (photos, cover, title, description),
published now (the request checked at both widths), and published by the worker with TikTok (the
fake) downloading the photos from us."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest
from django_tenants.utils import schema_context
from PIL import Image
from playwright.sync_api import expect

from apps.posts.models import Post, PostStatus
from apps.posts.services import post_photos
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, Stack, sign_in
from tests.conftest import wait_for
from tests.factories import TikTokAccountFactory

# How long an answer that goes through storage (an upload, a carousel change) may take on a loaded machine.
SERVER = 20_000


def jpeg(width: int, height: int, colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
def test_compose_a_photo_post_reorder_it_and_watch_it_publish(
    stack: Stack,
    stack_scheduler: None,
    make_agency: Any,
    page: Any,
    django_db_blocker: Any,
    viewport: dict[str, int],
) -> None:
    agency = make_agency()
    base = stack.env["TIKTOK_MEDIA_BASE_URL"]
    stack.fake.configure(verified_url_prefixes=[base])
    try:
        page.set_viewport_size(viewport)
        name = f"photo-composer-{viewport['width']}"
        sign_in(page, stack, agency)
        page.goto(stack.url(agency, "/accounts/"))
        page.get_by_role("button", name="Connect a TikTok account").click()
        page.get_by_label("Luna Bakes").check()
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(stack.url(agency, "/accounts/"))
        page.console_errors.clear()

        page.goto(stack.url(agency, "/posts/new/"))
        page.get_by_label("TikTok account").select_option(index=1)
        expect(page.locator("#creator-nickname")).to_have_text("Luna Bakes")
        page.get_by_label("Photos (1 to 35, swiped through on TikTok)").check()

        # Three photos: two chosen at once, then one more; a fourth, too large on its short side,
        # is refused by its place and name, and the carousel stays as it was
        photos = {
            "rye": jpeg(1080, 1350, "sienna"),
            "spelt": jpeg(1080, 1920, "olive"),
            "crumb": jpeg(1200, 900, "tan"),
        }
        page.set_input_files(
            "#id_photo",
            files=[
                {"name": f"{title}.jpg", "mimeType": "image/jpeg", "buffer": photos[title]}
                for title in ("rye", "spelt")
            ],
        )
        expect(page.locator("#photo-2")).to_contain_text("Photo 2", timeout=SERVER)
        page.set_input_files(
            "#id_photo", files=[{"name": "crumb.jpg", "mimeType": "image/jpeg", "buffer": photos["crumb"]}]
        )
        expect(page.locator("#photo-3")).to_contain_text("Photo 3", timeout=SERVER)
        # The spelt loaf is the cover, chosen before the carousel is reordered
        page.locator("#photo-2").get_by_label("Cover").check()
        page.set_input_files(
            "#id_photo",
            files=[{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1440, 2560, "gray")}],
        )
        expect(page.locator("#photos-error")).to_have_text(
            "Photo 4 (huge.jpg) is 1440×2560 pixels: its short side is 360 pixels over TikTok's 1,080. "  # noqa: RUF001
            "Resize it to at most 1,080 pixels on its short side and upload it again.",
            timeout=SERVER,
        )
        assert page.console_errors == []
        expect(page.locator(".carousel-item")).to_have_count(3)
        expect(page.locator("#photo-2").get_by_label("Cover")).to_be_checked()
        # Every thumbnail loaded (through the gated view, under the CSP), in the preview too
        wait_for(
            lambda: page.locator(".carousel-thumb, #preview-photos img").evaluate_all(
                "els => els.length === 6 && els.every(i => i.naturalWidth > 0)"
            )
        )

        # Move the crumb shot first: the cover stays on the spelt loaf, now photo 3
        page.get_by_role("button", name="Move photo 3 earlier").click()
        expect(page.locator("#photo-2 img")).to_have_attribute("alt", "Photo 2: crumb.jpg", timeout=SERVER)
        page.get_by_role("button", name="Move photo 2 earlier").click()
        expect(page.locator("#photo-1 img")).to_have_attribute("alt", "Photo 1: crumb.jpg", timeout=SERVER)
        expect(page.locator("#photo-3").get_by_label("Cover")).to_be_checked()
        expect(page.locator("#photo-3")).to_have_class(re.compile(r"\bis-cover\b"))
        page.get_by_label("Caption").fill("Three loaves 🍞")
        page.get_by_label("Description (photo posts)").fill("Rye, spelt and the crumb, out at six. #bakery")
        page.get_by_label("Who can see this post").select_option("PUBLIC_TO_EVERYONE")

        # The preview: the photos in order with the cover marked, the title and the description
        preview = page.locator("#preview-photos li")
        expect(preview).to_have_count(3)
        expect(page.locator("#preview-photos li.is-cover")).to_have_count(1)
        assert preview.nth(2).get_attribute("class") == "is-cover"
        expect(page.locator("#preview-caption")).to_have_text("Three loaves 🍞")
        expect(page.locator("#preview-description")).to_have_text(
            "Rye, spelt and the crumb, out at six. #bakery"
        )
        expect(page.locator("#preview-video")).to_be_hidden()
        # Photos have comments but no duet or stitch on TikTok
        expect(page.get_by_label("Comment")).to_be_visible()
        expect(page.get_by_label("Duet")).to_be_hidden()
        expect(page.get_by_label("Stitch")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

        # "Publish now" sends the form, with the description field (left scrolled out of view on a
        # phone) still focused: its change event must not move the page under the press.
        page.get_by_label("Description (photo posts)").focus()
        with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/posts/new/")) as sent:
            page.get_by_role("button", name="Publish now").click()
        form = sent.value.post_data_buffer
        assert b'name="action"\r\n\r\nnow\r\n' in form
        expect(page.locator("#messages")).to_contain_text("Publishing now", timeout=30_000)
        page.wait_for_url(re.compile(r".*/posts/[0-9a-f-]{36}/$"))
        assert page.console_errors == []

        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            post = Post.objects.get()
            assert [p.original_name for p in post_photos(post)] == ["crumb.jpg", "rye.jpg", "spelt.jpg"]
            assert post.photo_cover_index == 2 and post.media_type == "photo"

        def published() -> bool:
            with django_db_blocker.unblock(), schema_context(agency.schema_name):
                return Post.objects.get().status == PostStatus.PUBLISHED

        wait_for(published, timeout=60)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            publish = stack.fake.publish(Post.objects.get().publish_id)
        order = ["crumb", "rye", "spelt"]
        assert [d["sha256"] for d in publish["photo_downloads"]] == [
            hashlib.sha256(photos[title]).hexdigest() for title in order
        ]
        page.reload()
        expect(page.locator("body")).to_contain_text("Published")
        page.screenshot(path=SCREENSHOTS / f"{name}-published.png", full_page=True)
    finally:
        stack.fake.configure(verified_url_prefixes=[])


def test_without_javascript_photos_are_added_reordered_and_saved_with_the_form(
    stack: Stack, make_agency: Any, browser: Any, django_db_blocker: Any
) -> None:
    """The same carousel with JavaScript off: the form itself carries the photos and the buttons."""
    agency = make_agency()
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in(page, stack, agency)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            tokens = stack.fake.issue_tokens("fake-open-public-001")
            TikTokAccountFactory(
                open_id="fake-open-public-001",
                access_token=tokens["access_token"],
                refresh_token=tokens["refresh_token"],
            )
        page.goto(stack.url(agency, "/posts/new/"))
        page.get_by_label("TikTok account").select_option(index=1)
        page.get_by_label("Photos (1 to 35, swiped through on TikTok)").check()
        page.get_by_label("Caption").fill("Two loaves")
        page.set_input_files(
            "#id_photo",
            files=[
                {"name": "rye.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1080, 1350, "sienna")},
                {"name": "notes.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64},
                {"name": "spelt.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1080, 1080, "olive")},
            ],
        )
        page.get_by_role("button", name="Add the chosen photos").click()

        expect(page.locator(".carousel-item")).to_have_count(2, timeout=SERVER)
        expect(page.locator("#photos-error")).to_contain_text(
            "Photo 2 (notes.png) is not a JPEG or WebP image"
        )
        expect(page.get_by_label("Caption")).to_have_value("Two loaves")
        expect(page.get_by_label("Duet")).to_be_hidden()  # none for photos, without JavaScript too
        page.locator("#photo-2").get_by_label("Cover").check()
        page.get_by_role("button", name="Move photo 2 earlier").click()
        expect(page.locator("#photo-1 img")).to_have_attribute("alt", "Photo 1: spelt.jpg", timeout=SERVER)
        expect(page.locator("#photo-1").get_by_label("Cover")).to_be_checked()
        # (No images_loaded here: with JavaScript off, a promise's listeners and timers never run.)
        page.wait_for_load_state("load")
        loaded = page.locator(".carousel-thumb").evaluate_all("els => els.map(i => i.naturalWidth > 0)")
        assert loaded == [True, True]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "photo-composer-no-javascript-375.png", full_page=True)
        page.get_by_role("button", name="Save draft").click()

        expect(page.locator("#messages")).to_contain_text("Draft saved")
        expect(page.locator("#post-kind")).to_have_text("A photo post: 2 photos, photo 1 as the cover")
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            post = Post.objects.get()
            assert [p.original_name for p in post_photos(post)] == ["spelt.jpg", "rye.jpg"]
            assert post.status == PostStatus.DRAFT and post.photo_cover_index == 0
    finally:
        context.close()
