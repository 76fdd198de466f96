"""Client reports (page, CSV, PDF) from 30 days of snapshots, and the agency's brand on them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context
from PIL import Image
from pypdf import PdfReader

from apps.accounts.permissions import Perm, access_set
from apps.analytics.models import VideoSnapshot
from apps.brand.services import brand_set
from apps.posts.models import PostStatus
from apps.team.invitation_email import invitation_email_send
from apps.team.models import Invitation
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for, mail_text
from tests.factories import AccountSnapshotFactory, PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

CLIENT = "Crumb & Co Bakeries"


def signed_in(agency: Agency, email: str = "owner@shared.example") -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def thirty_days(alpha: Agency) -> dict[str, object]:
    """Two accounts of CLIENT with a snapshot on each of the last 30 days, one of another client.

    @luna gains 50 followers, 1,000 views, 100 likes, 10 comments and 5 shares a day; @crumbs 10,
    500, 20, 2 and 1: over the 29 days between the first and the last snapshot that is 1,740
    followers, 43,500 views, 3,480 likes, 348 comments and 174 shares."""
    today = timezone.now().date()
    with schema_context(alpha.schema_name):
        luna = TikTokAccountFactory(username="luna.bakes", client_label=CLIENT)
        crumbs = TikTokAccountFactory(username="crumbs", client_label=CLIENT)
        other = TikTokAccountFactory(username="elsewhere", client_label="Other Client")
        for i in range(30):
            day = today - dt.timedelta(days=29 - i)
            AccountSnapshotFactory(
                account=luna,
                date=day,
                followers=10_000 + 50 * i,
                views=100_000 + 1_000 * i,
                likes=5_000 + 100 * i,
                comments=200 + 10 * i,
                shares=50 + 5 * i,
            )
            AccountSnapshotFactory(
                account=crumbs,
                date=day,
                followers=2_000 + 10 * i,
                views=20_000 + 500 * i,
                likes=1_000 + 20 * i,
                comments=40 + 2 * i,
                shares=10 + i,
            )
        # Before the period: not counted.
        AccountSnapshotFactory(account=luna, date=today - dt.timedelta(days=40), followers=1, views=1)
        AccountSnapshotFactory(account=other, date=today, followers=999_999, views=999_999)
        now = timezone.now()
        for days_ago in (1, 5, 20):
            PostFactory(
                account=luna,
                status=PostStatus.PUBLISHED,
                publish_id=f"p{days_ago}",
                published_at=now - dt.timedelta(days=days_ago),
            )
        PostFactory(account=crumbs, status=PostStatus.PUBLISHED, publish_id="pc", published_at=now)
        PostFactory(
            account=luna,
            status=PostStatus.PUBLISHED,
            publish_id="old",
            published_at=now - dt.timedelta(days=45),
        )
        PostFactory(account=other, status=PostStatus.PUBLISHED, publish_id="other", published_at=now)
        for account, video, views, day in (
            (luna, "1", 50_000, today),
            (luna, "2", 30_000, today),
            (crumbs, "3", 40_000, today),
            (luna, "1", 900_000, today - dt.timedelta(days=3)),  # an earlier count: the latest wins
            (other, "4", 800_000, today),
        ):
            VideoSnapshot.objects.create(
                account=account,
                video_id=video,
                date=day,
                views=views,
                likes=views // 10,
                title=("=2+2 " if video == "2" else "") + f"Video number {video}",
            )
    return {"luna": luna, "crumbs": crumbs, "today": today}


def report_html(client: Client, **params: str) -> str:
    response = client.get("/reports/", {"client": CLIENT, **params})
    assert response.status_code == 200
    return response.content.decode()


def total(html: str, label: str) -> str:
    found = re.search(rf"<dt>{label}</dt><dd[^>]*>([^<]+)</dd>", html)
    assert found, f"no {label} on the page"
    return found.group(1)


def test_report_page_and_csv_add_up_30_days_of_the_clients_accounts(alpha: Agency) -> None:
    made = thirty_days(alpha)
    client = signed_in(alpha)

    # The page: the client's figures over the last 30 days (the default period)
    html = report_html(client)
    assert "Report for Crumb &amp; Co Bakeries" in html
    assert total(html, "Posts published") == "4"
    assert total(html, "Views") == "43,500"
    assert total(html, "Likes") == "3,480"
    assert total(html, "Comments") == "348"
    assert total(html, "Shares") == "174"
    assert total(html, "Follower growth") == "+1,740"
    assert total(html, "Followers at the end") == "13,740"
    # The top posts: each video's latest count in the period, most viewed first, no other client's
    tops = re.findall(r"Video number (\d)", html)
    assert tops == ["1", "3", "2"]
    assert "50,000" in html and "900,000" not in html and "elsewhere" not in html
    # A period the page refuses says why and keeps what was typed
    refused = report_html(client, start=str(made["today"]), end=str(made["today"] - dt.timedelta(days=3)))
    assert "The period ends before it starts." in refused and "Report for" not in refused

    # The CSV: the same figures, and a line per account
    query = {"client": CLIENT, "start": str(made["today"] - dt.timedelta(days=29)), "end": str(made["today"])}
    response = client.get("/reports/report.csv", query)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    figures = {row[0]: row[1] for row in rows if len(row) == 2}
    assert figures["Client"] == CLIENT and figures["Agency"] == alpha.name
    assert (figures["Posts published"], figures["Views"], figures["Follower growth"]) == (
        "4",
        "43500",
        "1740",
    )
    assert (figures["Likes"], figures["Comments"], figures["Shares"]) == ("3480", "348", "174")
    # A title that a spreadsheet would run as a formula is kept as text
    assert ["'=2+2 Video number 2", "luna.bakes", "30000", "3000", "0", "0"] in rows
    by_account = {row[0]: row[1:] for row in rows if row and row[0] in ("luna.bakes", "crumbs")}
    assert by_account["luna.bakes"] == ["3", "29000", "2900", "290", "145", "1450", "11450"]
    assert by_account["crumbs"] == ["1", "14500", "580", "58", "29", "290", "2290"]

    # A shorter period counts only its own days: the last 7 days, 6 days of growth
    week = report_html(client, start=str(made["today"] - dt.timedelta(days=6)), end=str(made["today"]))
    assert total(week, "Follower growth") == "+360" and total(week, "Posts published") == "3"


def test_the_pdf_carries_the_figures_and_the_agencys_brand(alpha: Agency) -> None:
    made = thirty_days(alpha)
    alpha.brand_colour = "#c2410c"
    alpha.save(update_fields=["brand_colour"])
    client = signed_in(alpha)

    response = client.get(
        "/reports/report.pdf",
        {"client": CLIENT, "start": str(made["today"] - dt.timedelta(days=29)), "end": str(made["today"])},
    )

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert alpha.name in text and f"Report for {CLIENT}" in text
    for label, value in (
        ("Posts published", "4"),
        ("Views", "43,500"),
        ("Likes", "3,480"),
        ("Comments", "348"),
        ("Shares", "174"),
        ("Follower growth", "+1,740"),
        ("Followers at the end", "13,740"),
    ):
        assert re.search(rf"^{label}\s+{re.escape(value)}$", text, re.MULTILINE), f"{label}: {value}"
    assert re.search(r"@luna\.bakes\s+3\s+29,000\s+2,900\s+290\s+145\s+\+1,450", text)
    assert "Video number 1" in text and "900,000" not in text and "Other Client" not in text


def test_a_reader_sees_only_the_clients_and_figures_of_their_own_accounts(alpha: Agency) -> None:
    made = thirty_days(alpha)
    with schema_context(alpha.schema_name):
        viewer = User.objects.create_user("viewer@alpha.example", OWNER_PASSWORD, role=Role.CLIENT)
        access_set(user=viewer, account=made["crumbs"], perms={Perm.VIEW}, by=None)
        User.objects.create_user("nobody@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    viewer_client = signed_in(alpha, "viewer@alpha.example")

    # Only @crumbs counts for someone who may see only @crumbs
    html = report_html(viewer_client)
    assert total(html, "Views") == "14,500" and total(html, "Follower growth") == "+290"
    assert "luna.bakes" not in html and "Other Client" not in html
    pdf = viewer_client.get("/reports/report.pdf", {"client": CLIENT})
    assert "29,000" not in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    # Another client's report, in any form, is not found
    for path in ("/reports/", "/reports/report.csv", "/reports/report.pdf"):
        assert viewer_client.get(path, {"client": "Other Client"}).status_code == 404
    # Someone who may see no account of the client gets 404 too, and no client to choose
    nobody = signed_in(alpha, "nobody@alpha.example")
    for path in ("/reports/", "/reports/report.csv", "/reports/report.pdf"):
        assert nobody.get(path, {"client": CLIENT}).status_code == 404
    assert "No client to report on yet" in nobody.get("/reports/").content.decode()


def _png(colour: str = "#c2410c") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(out, "PNG")
    return out.getvalue()


def test_brand_colour_is_checked_and_shows_on_the_report(alpha: Agency) -> None:
    client = signed_in(alpha)

    refused = client.post("/settings/brand/", {"colour": "#12g45z"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Give the colour as # and six hex digits" in page and 'value="#12g45z"' in page
    alpha.refresh_from_db()
    assert alpha.brand_colour == ""

    # Only owners and admins set the brand
    with schema_context(alpha.schema_name):
        User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    editor = signed_in(alpha, "editor@alpha.example")
    assert editor.post("/settings/brand/", {"colour": "#000000"}).status_code == 404

    saved = client.post("/settings/brand/", {"colour": "C2410C"})
    assert saved.status_code == 302
    alpha.refresh_from_db()
    assert alpha.brand_colour == "#c2410c"
    css = client.get("/brand/brand.css")
    assert css["Content-Type"] == "text/css" and "--brand-colour: #c2410c;" in css.content.decode()
    # The report page heads itself with the brand (the stylesheet with the colour, and the name)
    thirty_days(alpha)
    html = report_html(client)
    assert '<link rel="stylesheet" href="/brand/brand.css?v=c2410c">' in html
    assert f'<span class="client-brand-name">{alpha.name}</span>' in html
    assert " style=" not in html  # the CSP allows no inline style


def test_a_logo_must_be_an_image_and_is_served_by_its_signed_url(alpha: Agency) -> None:
    client = signed_in(alpha)

    # A text file dressed as a PNG is refused, and nothing is stored
    fake = SimpleUploadedFile("logo.png", b"<svg onload=alert(1)>not an image", content_type="image/png")
    refused = client.post("/settings/brand/", {"colour": "", "logo": fake})
    assert refused.status_code == 400
    assert "The logo must be a PNG, JPEG or WebP image." in refused.content.decode()
    alpha.refresh_from_db()
    assert alpha.brand_logo == ""

    # A real PNG is stored in the agency's media and shown by a signed URL
    logo = SimpleUploadedFile("logo.png", _png(), content_type="image/png")
    assert client.post("/settings/brand/", {"colour": "", "logo": logo}).status_code == 302
    alpha.refresh_from_db()
    assert alpha.brand_logo.startswith("brand/") and alpha.brand_logo_type == "image/png"
    settings_page = client.get("/settings/").content.decode()
    src = re.search(r'<img class="client-brand-logo" src="(/brand/logo/[^"]+/)"', settings_page)
    assert src is not None
    served = client_for(alpha).get(src.group(1))  # mail clients have no session
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served.content == _png()
    # A tampered token, or another agency's site, finds nothing
    assert client_for(alpha).get(src.group(1).replace("/logo/", "/logo/x")).status_code == 404
    beta = Agency.objects.get(slug="beta")
    assert client_for(beta).get(src.group(1)).status_code == 404

    # A new logo replaces the old one, whose URL then finds nothing; removing it leaves none
    newer = SimpleUploadedFile("new.png", _png("#0f766e"), content_type="image/png")
    assert client.post("/settings/brand/", {"colour": "", "logo": newer}).status_code == 302
    assert client_for(alpha).get(src.group(1)).status_code == 404
    assert client.post("/settings/brand/", {"colour": "", "remove_logo": "on"}).status_code == 302
    alpha.refresh_from_db()
    assert alpha.brand_logo == ""
    assert "client-brand-logo" not in client.get("/settings/").content.decode()


def test_the_invitation_a_client_gets_carries_the_agencys_brand(
    in_alpha: Agency, smtp_server: SMTPServer
) -> None:
    # Given an agency with a colour and a logo, and an invitation for a client reviewer
    owner = User.objects.get(email="owner@shared.example")
    brand_set(
        agency=in_alpha,
        colour="#c2410c",
        logo=SimpleUploadedFile("logo.png", _png(), content_type="image/png"),
        by=owner,
    )
    in_alpha.refresh_from_db()
    invitation = Invitation.objects.create(
        email="reviewer@client.example",
        role=Role.CLIENT,
        token_hash="b" * 64,
        expires_at=timezone.now() + dt.timedelta(days=7),
        invited_by=owner,
    )

    # When the invitation is emailed
    assert invitation_email_send(invitation_id=invitation.pk)

    # Then its HTML part is headed by the agency's name, colour and logo (an absolute, signed URL
    # that works without a session), and the plain text still has the link
    message = smtp_server.messages[-1]
    html = str(message.get_body(preferencelist=("html",)).get_content())
    assert "border-top:6px solid #c2410c" in html and in_alpha.name in html
    logo = re.search(r'<img src="([^"]+)" alt="[^"]+ logo"', html)
    assert logo is not None and logo.group(1).startswith(in_alpha.url.rstrip("/") + "/brand/logo/")
    path = logo.group(1).removeprefix(in_alpha.url.rstrip("/"))
    assert client_for(in_alpha).get(path).content == _png()
    assert "/team/join/" in mail_text(message)


def test_the_report_page_does_not_grow_in_queries_with_the_clients_accounts(alpha: Agency) -> None:
    today = timezone.now().date()

    def accounts_of(client_label: str, count: int) -> None:
        with schema_context(alpha.schema_name):
            for _ in range(count):
                account = TikTokAccountFactory(client_label=client_label)
                AccountSnapshotFactory(account=account, date=today)
                VideoSnapshot.objects.create(account=account, video_id=str(account.pk.int)[:19], date=today)
                PostFactory(
                    account=account,
                    status=PostStatus.PUBLISHED,
                    publish_id=str(account.pk),
                    published_at=timezone.now(),
                )

    accounts_of("Small", 1)
    accounts_of("Large", 4)
    client = signed_in(alpha)
    client.get("/reports/", {"client": "Small"})  # warm the session and caches alike

    def queries(client_label: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/reports/", {"client": client_label}).status_code == 200
        return len(captured)

    assert queries("Large") == queries("Small")
