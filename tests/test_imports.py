"""Bulk import of posts: a person uploads a CSV or XLSX file, maps its columns, sees every line
checked with the composer's own rules (each error on its line and cell), confirms, and a real
worker saves exactly the good lines (scheduled, sent for approval or drafts) with progress the
page polls, one audit entry and a summary. The posts list exports the same columns back.

Through HTTP on real agencies, TikTok played by the fake over a real socket."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zoneinfo
from typing import Any

import openpyxl
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.imports.models import ImportStatus, PostImport
from apps.imports.services import import_run
from apps.media.models import LibraryKind, MediaItem
from apps.media.storage import media_storage
from apps.posts.models import MediaKind, Post, PostMedia, PostStatus
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for, wait_for
from tests.factories import PostFactory, TikTokAccountFactory
from tests.mp4 import mp4_bytes

PUBLIC = "fake-open-public-001"  # @luna.bakes: Everyone, Friends, Only me
STUDIO = "fake-open-studio-006"  # @north.studio
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
HEADER = [
    "Account",
    "Caption",
    "Date",
    "Time",
    "Time zone",
    "Privacy",
    "Comments",
    "Branded content",
    "Disclosure",
    "Media",
]


def connect(fake: FakeTikTok, open_id: str, username: str, **extra: Any) -> TikTokAccount:
    tokens = fake.issue_tokens(open_id)
    return TikTokAccountFactory(
        open_id=open_id,
        username=username,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        **extra,
    )


def stored_video(owner: User, name: str = "launch.mp4", post: Post | None = None) -> PostMedia:
    """A video in the agency's storage, as the composer's upload leaves it."""
    data = mp4_bytes()
    media = PostMedia(
        post=post,
        kind=MediaKind.VIDEO,
        size_bytes=len(data),
        mime_type="video/mp4",
        sha256=hashlib.sha256(data).hexdigest(),
        original_name=name,
        duration_seconds=12,
        width=1080,
        height=1920,
        frame_rate=30,
        video_codec="H.264",
        probed_at=timezone.now(),
        created_by=owner,
    )
    media.file.save(name, ContentFile(data), save=False)
    # In the media library by its file name, as every upload is (apps.media).
    media.library_item = MediaItem.objects.create(
        kind=LibraryKind.VIDEO,
        name=name,
        file=media.file.name,
        size_bytes=media.size_bytes,
        mime_type=media.mime_type,
        sha256=media.sha256,
        duration_seconds=media.duration_seconds,
        width=media.width,
        height=media.height,
        frame_rate=media.frame_rate,
        video_codec=media.video_codec,
        probed_at=media.probed_at,
        created_by=owner,
    )
    media.save()
    return media


def signed_in(agency: Agency, email: str) -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def csv_file(
    rows: list[list[str]], *, header: list[str] = HEADER, delimiter: str = ",", name: str = "plan.csv"
) -> Any:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, ("\ufeff" + text.getvalue()).encode(), content_type="text/csv")


def upload(client: Client, file: Any, mode: str = "schedule") -> str:
    """Upload, keep the guessed columns, choose the mode; returns the import's preview path."""
    response = client.post("/posts/import/", {"file": file})
    assert response.status_code == 302, response.content.decode()
    columns = response["Location"]
    page = client.get(columns).content.decode()
    chosen = dict(re.findall(r'name="(column-\d+)">.*?<option value="(\w+)" selected', page, re.S))
    response = client.post(columns, {**chosen, "mode": mode})
    assert response.status_code == 302, response.content.decode()
    return response["Location"]


def later(days: int, hour: int) -> tuple[str, str]:
    when = (timezone.now().astimezone(PARIS) + dt.timedelta(days=days)).replace(hour=hour, minute=0)
    return when.date().isoformat(), when.strftime("%H:%M")


def cell_error(page: str, line: int, field: str) -> str:
    match = re.search(rf'id="line-{line}-{field}-error">(.*?)</p>', page, re.S)
    assert match, f"no error on line {line}, {field}"
    return match.group(1)


def test_500_lines_with_20_bad_ones_import_exactly_the_480_good_ones_through_a_worker(
    make_agency: Any, worker: Any, tiktok: FakeTikTok, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock():
        with schema_context(agency.schema_name):
            owner = User.objects.get(role=Role.OWNER)
            User.objects.filter(pk=owner.pk).update(time_zone="Europe/Paris")
            luna = connect(tiktok, PUBLIC, "luna.bakes")
            studio = connect(tiktok, STUDIO, "north.studio")
            source_post = PostFactory(
                account=luna, status=PostStatus.DRAFT, scheduled_at=None, created_by=owner
            )
            source = stored_video(owner, post=source_post)
        client = signed_in(agency, "owner@committed.example")
        # Given 500 lines: 100 scheduled with a video (14 a day), 380 drafts without one, and 20
        # bad ones, each breaking one of the composer's rules
        rows: list[list[str]] = []
        for i in range(100):
            date, time = later(2 + i // 14, 8 + i % 14)
            rows.append(
                [
                    "@luna.bakes",
                    f"Bake {i} 🍞",
                    date,
                    time,
                    "Europe/Paris",
                    "Everyone",
                    "yes",
                    "no",
                    "no",
                    "launch.mp4",
                ]
            )
        for i in range(380):
            date, time = later(40 + i // 14, 8 + i % 14)
            rows.append(["north.studio", f"Idea {i}", date, time, "", "Friends", "no", "", "", ""])
        date, time = later(3, 9)
        past_date, past_time = later(-2, 9)
        bad = [
            (
                ["@nobody.here", "x", date, time, "", "Everyone", "", "", "", ""],
                "account",
                "not an account you may",
            ),
            (
                ["luna.bakes", "é" * 2201, date, time, "", "Everyone", "", "", "", "launch.mp4"],
                "caption",
                "2,201",
            ),
            (
                ["luna.bakes", "x", date, time, "", "Followers", "", "", "", "launch.mp4"],
                "privacy",
                "does not offer",
            ),
            (
                ["luna.bakes", "x", date, time, "", "Only me", "", "yes", "yes", "launch.mp4"],
                "privacy",
                "Branded content visibility cannot be set to private.",
            ),
            (
                ["luna.bakes", "x", past_date, past_time, "", "Everyone", "", "", "", "launch.mp4"],
                "date",
                "already passed",
            ),
            (
                ["luna.bakes", "x", date, time, "Mars/Olympus", "Everyone", "", "", "", "launch.mp4"],
                "time_zone",
                "Choose a time zone from the list.",
            ),
            (
                ["luna.bakes", "x", date, time, "", "", "", "", "", "launch.mp4"],
                "privacy",
                "Choose who can see",
            ),
            (
                ["luna.bakes", "x", date, time, "", "Everyone", "maybe", "", "", "launch.mp4"],
                "allow_comment",
                "Enter yes or no",
            ),
            (
                ["luna.bakes", "x", date, time, "", "Everyone", "", "", "", "missing.mp4"],
                "media",
                "No video named",
            ),
            (
                ["luna.bakes", "x", "14/03/2027", time, "", "Everyone", "", "", "", "launch.mp4"],
                "date",
                "YYYY-MM-DD",
            ),
        ] * 2
        inserted = []
        for n, (row, field, message) in enumerate(bad):
            copy = list(row)
            rows.insert(5 + n * 23, copy)  # spread through the file
            inserted.append((copy, field, message))
        bad_lines = {
            next(i for i, r in enumerate(rows) if r is copy) + 2: (field, message)
            for copy, field, message in inserted
        }
        assert len(rows) == 500

        # When they upload it and keep the guessed columns
        preview_path = upload(client, csv_file(rows), mode="schedule")
        page = client.get(preview_path).content.decode()

        # Then every bad line shows its error on its cell, the input kept, and nothing is saved yet
        assert "480 of 500 lines can be imported" in page and "20 have errors" in page
        for line, (field, message) in bad_lines.items():
            assert message in cell_error(page, line, field), (line, field)
        assert "Mars/Olympus" in page and "14/03/2027" in page
        assert page.count('class="import-bad"') == 20
        with schema_context(agency.schema_name):
            assert Post.objects.count() == 1
            post_import = PostImport.objects.get()

        # When they confirm, a worker imports; the page polls its progress, then shows the summary
        response = client.post(preview_path)
        assert response.status_code == 302
        progress = client.get(response["Location"]).content.decode()
        assert "Import started" in progress
        assert 'hx-trigger="every 1s"' in progress or "480 posts imported" in progress

        def done() -> bool:
            with schema_context(agency.schema_name):
                post_import.refresh_from_db()
            return post_import.status == ImportStatus.DONE

        wait_for(done, timeout=50)
        summary = client.get(response["Location"]).content.decode()
        assert "every 1s" not in summary
        assert "480 posts imported" in summary and "380 drafts" in summary and "100 scheduled" in summary
        assert "20 lines left out" in summary
        with schema_context(agency.schema_name):
            imported = Post.objects.exclude(pk=source_post.pk)
            assert imported.count() == 480
            assert imported.filter(status=PostStatus.SCHEDULED, account=luna).count() == 100
            assert imported.filter(status=PostStatus.DRAFT, account=studio).count() == 380
            assert not imported.filter(caption="x").exists()
            first = imported.get(caption="Bake 0 🍞")
            assert first.privacy_level == "PUBLIC_TO_EVERYONE" and first.allow_comment
            assert first.schedule_time_zone == "Europe/Paris"
            # Each post reuses the library's video: one stored object, the library lists the posts
            uses = PostMedia.objects.filter(post__in=imported)
            assert uses.count() == 100 and set(uses.values_list("sha256", flat=True)) == {source.sha256}
            assert set(uses.values_list("library_item", flat=True)) == {source.library_item_id}
            assert PostMedia.objects.get(pk=source.pk).post_id == source_post.pk
            assert {str(m.file.name) for m in uses} == {str(source.file.name)}
            assert media_storage().exists(str(source.file.name))
            # One audit entry for the whole import, with its counts
            entry = AuditLog.objects.get(action="import.finished")
            assert entry.changes["imported"] == 480 and entry.changes["left_out"] == 20
            assert entry.actor_id == owner.pk


@pytest.mark.django_db
def test_an_editor_whose_posts_need_approval_imports_them_for_approval(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email="owner@shared.example")
        luna = connect(tiktok, PUBLIC, "luna.bakes", requires_approval=True)
        editor = User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        access_set(user=editor, account=luna, perms={Perm.VIEW, Perm.DRAFT}, by=owner)
        stored_video(editor)
    client = signed_in(alpha, "editor@alpha.example")
    # Given a file with 16 posts on one day (TikTok's cap is about 15) and one post too soon to review
    date, _ = later(5, 0)
    rows = [
        ["luna.bakes", f"Post {i}", date, f"{6 + i}:00", "UTC", "Everyone", "", "", "", "launch.mp4"]
        for i in range(16)
    ]
    soon = (timezone.now() + dt.timedelta(minutes=2)).astimezone(dt.UTC)
    rows.append(
        [
            "luna.bakes",
            "Too soon",
            soon.date().isoformat(),
            soon.strftime("%H:%M"),
            "UTC",
            "Everyone",
            "",
            "",
            "",
            "launch.mp4",
        ]
    )
    preview_path = upload(client, csv_file(rows, delimiter=";"), mode="schedule")
    page = client.get(preview_path).content.decode()
    # Then the preview warns about the day and refuses the post a reviewer could not see in time
    assert "would have 16 posts on" in page and "about 15 a day" in page
    assert "approved before they go out" in cell_error(page, 18, "date")
    assert client.post(preview_path).status_code == 302
    with schema_context(alpha.schema_name):
        post_import = PostImport.objects.get()
        import_run(str(post_import.pk))  # what the worker runs
        post_import.refresh_from_db()
        assert post_import.counts == {
            "imported": 16,
            "draft": 0,
            "scheduled": 0,
            "pending_approval": 16,
            "left_out": 1,
        }
        assert Post.objects.filter(status=PostStatus.PENDING_APPROVAL, created_by=editor).count() == 16
    summary = client.get(f"/posts/import/{post_import.pk}/").content.decode()
    assert "16 waiting for approval" in summary and "would have 16 posts" in summary
    assert "Line 18: Posts for this account are approved before they go out" in summary
    # An import whose worker stopped says so instead of polling for ever
    with schema_context(alpha.schema_name):
        PostImport.objects.filter(pk=post_import.pk).update(
            status=ImportStatus.IMPORTING, updated_at=timezone.now() - dt.timedelta(minutes=20)
        )
    stalled = client.get(f"/posts/import/{post_import.pk}/").content.decode()
    assert "stopped making progress" in stalled and "every 1s" not in stalled
    # Nobody else reaches the import, not even the owner
    owner_client = signed_in(alpha, "owner@shared.example")
    for path in (f"/posts/import/{post_import.pk}/", preview_path):
        assert owner_client.get(path).status_code == 404


@pytest.mark.django_db
def test_files_that_cannot_be_imported_are_refused_with_a_reason(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        TikTokAccountFactory(username="luna.bakes")
    client = signed_in(alpha, "owner@shared.example")
    cases = [
        (csv_file([["luna.bakes", "x"]] * 501), "at most 500 can be imported"),
        (SimpleUploadedFile("plan.pdf", b"%PDF-1.4"), "Choose a CSV (.csv) or Excel (.xlsx) file"),
        (SimpleUploadedFile("plan.csv", "Account\nlüna".encode("latin-1")), "not UTF-8"),
        (SimpleUploadedFile("plan.xlsx", b"Account,Caption\n"), "not an Excel .xlsx file"),
        (SimpleUploadedFile("plan.csv", b"x" * (5 * 1024 * 1024 + 1)), "larger than 5 MB"),
        (SimpleUploadedFile("plan.csv", b"Account,Caption\n"), "no posts under it"),
    ]
    for file, message in cases:
        response = client.post("/posts/import/", {"file": file})
        assert response.status_code == 400 and message in response.content.decode(), message
    with schema_context(alpha.schema_name):
        assert not PostImport.objects.exists()


@pytest.mark.django_db
def test_an_xlsx_file_is_read_and_its_columns_mapped_by_hand(alpha: Agency, tiktok: FakeTikTok) -> None:
    with schema_context(alpha.schema_name):
        connect(tiktok, PUBLIC, "luna.bakes")
    client = signed_in(alpha, "owner@shared.example")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Handle", "Words", "Day", "Clock"])
    when = timezone.now() + dt.timedelta(days=3)
    sheet.append(
        ["@luna.bakes", "From a spreadsheet", dt.datetime.combine(when.date(), dt.time()), dt.time(18, 30)]
    )
    data = io.BytesIO()
    book.save(data)
    response = client.post("/posts/import/", {"file": SimpleUploadedFile("plan.xlsx", data.getvalue())})
    columns = response["Location"]
    page = client.get(columns).content.decode()
    assert "From a spreadsheet" in page and f"{when.date().isoformat()}" in page
    # "Handle" is guessed as the account; the caption column is chosen by hand
    response = client.post(
        columns,
        {
            "column-0": "account",
            "column-1": "caption",
            "column-2": "date",
            "column-3": "time",
            "mode": "draft",
        },
    )
    page = client.get(response["Location"]).content.decode()
    assert "1 of 1 lines can be imported" in page
    # Choosing one column twice is refused, the choices kept
    response = client.post(columns, {"column-0": "account", "column-1": "account", "mode": "draft"})
    assert response.status_code == 400 and "more than one column" in response.content.decode()


@pytest.mark.django_db
def test_the_filtered_posts_export_to_csv_and_import_back_in_the_same_columns(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email="owner@shared.example")
        luna = connect(tiktok, PUBLIC, "luna.bakes")
        studio = connect(tiktok, STUDIO, "north.studio")
        media_post = PostFactory(
            account=luna,
            caption="=SUM(A1) launch 🍞",
            privacy_level="PUBLIC_TO_EVERYONE",
            allow_comment=True,
            created_by=owner,
            scheduled_at=timezone.now() + dt.timedelta(days=2),
        )
        stored_video(owner, "launch.mp4", post=media_post)
        PostFactory(account=studio, caption="Other account's", privacy_level="SELF_ONLY")
    client = signed_in(alpha, "owner@shared.example")
    response = client.get(f"/posts/import/export/?account={luna.pk}")
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0][:2] == ["Account", "Caption"] and len(lines) == 2
    line = dict(zip(lines[0], lines[1], strict=True))
    assert line["Account"] == "luna.bakes" and line["Caption"] == "'=SUM(A1) launch 🍞"  # formula-safe
    assert line["Privacy"] == "Everyone" and line["Comments"] == "yes" and line["Media"] == "launch.mp4"
    assert line["Time zone"] == "Europe/Paris"
    # Imported back as it is: every column guessed, the line valid, the caption as it was
    preview_path = upload(client, SimpleUploadedFile("posts.csv", body.encode()), mode="schedule")
    page = client.get(preview_path).content.decode()
    assert "1 of 1 lines can be imported" in page and "=SUM(A1) launch" in page
    with schema_context(alpha.schema_name):
        assert PostImport.objects.get().mapping == {
            "account": 0,
            "caption": 1,
            "date": 2,
            "time": 3,
            "time_zone": 4,
            "privacy": 5,
            "allow_comment": 6,
            "allow_duet": 7,
            "allow_stitch": 8,
            "commercial_disclosure": 9,
            "brand_organic": 10,
            "brand_content": 11,
            "is_aigc": 12,
            "media": 13,
        }


@pytest.mark.django_db
def test_people_who_may_not_draft_do_not_reach_the_import(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="luna.bakes")
        PostFactory(account=account, caption="Secret plan")
        viewer = User.objects.create_user("viewer@alpha.example", OWNER_PASSWORD, role=Role.VIEWER)
        access_set(user=viewer, account=account, perms={Perm.VIEW}, by=None)
        User.objects.create_user("nobody@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
    viewer_client = signed_in(alpha, "viewer@alpha.example")
    assert viewer_client.get("/posts/import/").status_code == 404
    assert viewer_client.post("/posts/import/", {"file": csv_file([["luna.bakes", "x"]])}).status_code == 404
    # The export holds only what each person may see
    seen = b"".join(viewer_client.get("/posts/import/export/").streaming_content).decode()
    assert "Secret plan" in seen
    nobody = signed_in(alpha, "nobody@alpha.example")
    assert "Secret plan" not in b"".join(nobody.get("/posts/import/export/").streaming_content).decode()
