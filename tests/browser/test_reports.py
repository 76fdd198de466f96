"""A client report in a real browser under the strict CSP: the brand set on Settings (a logo
uploaded, a colour typed) heads it, and it fits a phone."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from PIL import Image

from tests.browser.conftest import PHONE, Stack, images_loaded, sign_in, snap
from tests.factories import AccountSnapshotFactory, TikTokAccountFactory


def test_the_brand_set_on_settings_heads_the_report_on_a_phone(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any, tmp_path: Path
) -> None:
    agency = make_agency()
    today = timezone.now().date()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account = TikTokAccountFactory(
            username="luna.bakes", open_id=f"luna-{uuid.uuid4().hex[:8]}", client_label="Crumb Bakeries"
        )
        for i in range(30):
            AccountSnapshotFactory(
                account=account, date=today - dt.timedelta(days=29 - i), followers=1_000 + 10 * i
            )
    connection.set_schema_to_public()
    logo = tmp_path / "logo.png"
    out = io.BytesIO()
    Image.new("RGB", (120, 40), "#0f766e").save(out, "PNG")
    logo.write_bytes(out.getvalue())

    # The owner sets a colour and uploads a logo on the settings page
    sign_in(page, stack, agency)
    page.goto(stack.url(agency, "/settings/"))
    page.get_by_label("Brand colour").fill("#0F766E")
    page.get_by_label("Logo").set_input_files(str(logo))
    page.get_by_role("button", name="Save brand").click()
    page.wait_for_load_state()
    assert page.get_by_text("Brand saved.").is_visible()

    # The report is headed by the logo and a bar in the colour (from the agency's stylesheet, not
    # an inline style the CSP would block), with the figures
    page.goto(stack.url(agency, "/reports/"))
    assert page.get_by_role("heading", name="Report for Crumb Bakeries").is_visible()
    bar = page.locator(".client-brand")
    assert bar.evaluate("el => getComputedStyle(el).borderTopColor") == "rgb(15, 118, 110)"
    assert images_loaded(page.locator("img.client-brand-logo")) == [True]
    assert page.locator(".total", has_text="Follower growth").inner_text().endswith("+290")
    # And it fits a 375 px screen
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    snap(page, "client-report")
