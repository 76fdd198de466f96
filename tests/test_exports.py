"""An agency's own export: an owner asks on the export page, a real worker builds the archive in
the object store with progress the page shows, the owner downloads one zip holding every kind of
record as JSON and CSV and every media file as stored, with no secret in it and nothing of another
agency. Only owners reach it (404 for anyone else); the link expires and the retention run removes
the archive; a build that fails says why and leaves nothing."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.audit.models import AuditLog
from apps.exports.models import AgencyExport, ExportStatus
from apps.exports.services import KINDS, export_build
from apps.media.storage import media_storage
from apps.mfa.reauth import REAUTH_SESSION_KEY
from apps.notifications.models import Event, Notification
from apps.posts.models import Post, PostMedia
from apps.users.models import Role, User
from tenants.models import Agency
from tenants.retention import agency_purge_expired
from tests.conftest import OWNER_PASSWORD, client_for, wait_for
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory
from tests.test_agency_backup import fill

PLANTED_TOKEN = "act.planted-export-token-0b9f"
PLANTED_REFRESH = "rft.planted-export-refresh-77c1"


def owner_client(agency: Agency) -> tuple[Client, User]:
    client = client_for(agency)
    with schema_context(agency.schema_name):
        owner = User.objects.get(role=Role.OWNER)
        client.force_login(owner)
    return client, owner


def start(client: Client, **extra: str) -> Any:
    return client.post("/settings/export/", {"reauth_secret": OWNER_PASSWORD, **extra})


def archive_of(response: Any) -> zipfile.ZipFile:
    body = b"".join(response.streaming_content)
    assert len(body) == int(response["Content-Length"])
    return zipfile.ZipFile(io.BytesIO(body))


def test_an_owner_exports_everything_through_a_worker_and_downloads_one_zip(
    make_agency: Any, worker: Any, django_db_blocker: Any
) -> None:
    # Given an agency in use (members, accounts, posts in every state, media, audit entries), an
    # account holding tokens, and another agency beside it
    agency, other = make_agency(), make_agency()
    with django_db_blocker.unblock():
        fill(agency, open_id="export-open-id")
        with schema_context(agency.schema_name):
            TikTokAccount.objects.update(access_token=PLANTED_TOKEN, refresh_token=PLANTED_REFRESH)
            counts = {
                "posts": Post._base_manager.count(),
                "members": User._base_manager.count(),
                "accounts": TikTokAccount._base_manager.count(),
            }
            stored = {
                str(m.pk): m.sha256
                for m in PostMedia.objects.filter(deleted_at__isnull=True).exclude(file="")
            }
            password_hash = User.objects.get(role=Role.OWNER).password
        with schema_context(other.schema_name):
            PostFactory(account=TikTokAccountFactory(), caption="Only the other agency's caption")
        client, owner = owner_client(agency)

        # When the owner starts an export (asked for the password again)
        page = client.get("/settings/export/")
        assert page.status_code == 200
        assert "Start an export" in page.content.decode()
        response = start(client)
        assert response.status_code == 302
        followed = client.get(response["Location"])
        assert "Export started" in followed.content.decode()
        with schema_context(agency.schema_name):
            export = AgencyExport.objects.get()
        # Then the page shows it in progress, polling its own row, until the worker has built it
        assert f'hx-get="/settings/export/{export.pk}/"' in followed.content.decode()

        def ready() -> AgencyExport | None:
            with schema_context(agency.schema_name):
                export.refresh_from_db()
            return export if export.status == ExportStatus.READY else None

        wait_for(ready, timeout=60)
        row = client.get(f"/settings/export/{export.pk}/").content.decode()
        assert "hx-trigger" not in row and "Download" in row and "The link expires" in row
        assert export.steps_done == export.steps_total == len(KINDS) + len(stored)

        # And the download is one zip with every kind as JSON and CSV, and every media file as stored
        download = client.get(f"/settings/export/{export.pk}/download/")
        assert download.status_code == 200
        assert download["Content-Type"] == "application/zip"
        assert download["Content-Disposition"].startswith(f'attachment; filename="postline-{agency.slug}-')
        archive = archive_of(download)
        assert archive.testzip() is None
        names = set(archive.namelist())
        for kind in KINDS:
            assert {f"{kind.stem}.json", f"{kind.stem}.csv"} <= names
        for stem, expected in counts.items():
            rows = json.loads(archive.read(f"{stem}.json"))
            assert len(rows) == expected, stem
            lines = list(csv.DictReader(io.StringIO(archive.read(f"{stem}.csv").decode())))
            assert [line["id"] for line in lines] == [row["id"] for row in rows], stem
        captions = {row["caption"] for row in json.loads(archive.read("posts.json"))}
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["agency"]["slug"] == agency.slug
        assert manifest["counts"]["posts"] == counts["posts"]
        assert {f["media_id"]: f["sha256"] for f in manifest["media"]} == stored
        for item in manifest["media"]:
            assert hashlib.sha256(archive.read(item["path"])).hexdigest() == item["sha256"]

        # And nothing in it would let anyone act as the agency, and nothing is another agency's
        everything = b"".join(archive.read(name) for name in names)
        for secret in (PLANTED_TOKEN, PLANTED_REFRESH, password_hash):
            assert secret.encode() not in everything
        assert "Only the other agency's caption" not in captions
        assert b"Only the other agency's caption" not in everything

        # And asking, building and downloading are in the audit log; the owner was told it is ready
        with schema_context(agency.schema_name):
            actions = list(
                AuditLog.objects.filter(object_id=str(export.pk))
                .order_by("created_at")
                .values_list("action", flat=True)
            )
            assert actions == ["export.requested", "export.ready", "export.downloaded"]
            event = Event.objects.get(kind="export_finished")
            assert event.title == "Your agency export is ready to download"
            assert Notification.objects.filter(event=event, recipient=owner).exists()
            export.refresh_from_db()
            assert export.downloads == 1


@pytest.mark.django_db
def test_only_owners_reach_the_export_and_another_agencys_export_is_not_found(
    alpha: Agency, beta: Agency
) -> None:
    with schema_context(alpha.schema_name):
        owner = User.objects.get(role=Role.OWNER)
        export = AgencyExport.objects.create(requested_by=owner)
        admin = UserFactory(role=Role.ADMIN)
        editor = UserFactory(role=Role.EDITOR)
    paths = ["/settings/export/", f"/settings/export/{export.pk}/", f"/settings/export/{export.pk}/download/"]
    for person in (admin, editor):
        client = client_for(alpha)
        with schema_context(alpha.schema_name):
            client.force_login(person)
        for path in paths:
            assert client.get(path).status_code == 404, (person.role, path)
        assert client.post("/settings/export/", {"reauth_secret": OWNER_PASSWORD}).status_code == 404
        settings_page = client.get("/settings/")
        assert "/settings/export/" not in settings_page.content.decode()
    # The owner of another agency asks for alpha's export on their own site: there is no such thing
    other_client, _ = owner_client(beta)
    for path in paths[1:]:
        assert other_client.get(path).status_code == 404
    anonymous = client_for(alpha).get("/settings/export/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    with schema_context(alpha.schema_name):
        assert AgencyExport.objects.count() == 1  # nothing was started by any of them
    # The owner finds it from the settings page
    client, _ = owner_client(alpha)
    assert "/settings/export/" in client.get("/settings/").content.decode()


@pytest.mark.django_db
def test_a_wrong_password_or_an_export_already_running_starts_nothing(alpha: Agency) -> None:
    client, _ = owner_client(alpha)
    with schema_context(alpha.schema_name):  # (sessions live in the agency's schema)
        session = client.session
        session[REAUTH_SESSION_KEY] = 0  # signed in long ago: the page asks for the password again
        session.save()
    assert 'name="reauth_secret"' in client.get("/settings/export/").content.decode()
    refused = client.post("/settings/export/", {"reauth_secret": "not the password"})
    assert refused.status_code == 400
    assert "nothing was changed" in refused.content.decode()
    with schema_context(alpha.schema_name):
        assert AgencyExport.objects.count() == 0

    assert start(client).status_code == 302
    again = client.post("/settings/export/")  # the password was just given: the window is open
    assert again.status_code == 409
    assert "An export is already being built" in again.content.decode()
    with schema_context(alpha.schema_name):
        assert AgencyExport.objects.count() == 1
        # One whose worker stopped (no progress for long) no longer holds the next one back
        AgencyExport.objects.update(updated_at=timezone.now() - dt.timedelta(hours=1))
    assert client.post("/settings/export/").status_code == 302
    with schema_context(alpha.schema_name):
        states = sorted(AgencyExport.objects.values_list("status", flat=True))
        assert states == [ExportStatus.FAILED, ExportStatus.QUEUED]
        assert "stopped making progress" in AgencyExport.objects.get(status=ExportStatus.FAILED).error


@pytest.mark.django_db
def test_an_expired_link_is_refused_and_the_retention_run_removes_the_archive(alpha: Agency) -> None:
    client, owner = owner_client(alpha)
    with schema_context(alpha.schema_name):
        PostFactory(account=TikTokAccountFactory(), caption="kept")
        export = AgencyExport.objects.create(requested_by=owner)
        export_build(str(export.pk))
        export.refresh_from_db()
        assert export.status == ExportStatus.READY and media_storage().exists(export.file_name)
        name = export.file_name
    assert client.get(f"/settings/export/{export.pk}/download/").status_code == 200

    with schema_context(alpha.schema_name):
        AgencyExport.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    expired = client.get(f"/settings/export/{export.pk}/download/", follow=True)
    assert "can no longer be downloaded" in expired.content.decode()
    assert "Link expired" in expired.content.decode()

    report = agency_purge_expired(agency=alpha, dry_run=True)
    assert report.exports == 1 and "1 expired export archive(s)" in report.describe(dry_run=True)
    with schema_context(alpha.schema_name):
        assert media_storage().exists(name)  # a dry run removes nothing
    assert agency_purge_expired(agency=alpha).exports == 1
    with schema_context(alpha.schema_name):
        assert not media_storage().exists(name)
        export.refresh_from_db()
        assert export.status == ExportStatus.EXPIRED and export.file_name == ""


@pytest.mark.django_db
def test_a_build_that_cannot_read_a_media_file_fails_saying_so_and_leaves_no_archive(alpha: Agency) -> None:
    client, owner = owner_client(alpha)
    with schema_context(alpha.schema_name):
        post = PostFactory(account=TikTokAccountFactory())
        media = PostMedia(post=post, size_bytes=5, mime_type="video/mp4", sha256="0" * 64)
        media.file.save("gone.mp4", ContentFile(b"12345"), save=True)
        media_storage().delete(str(media.file.name))  # the object went missing from the store
        export = AgencyExport.objects.create(requested_by=owner)
        export_build(str(export.pk))
        export.refresh_from_db()
        assert export.status == ExportStatus.FAILED
        assert "Nothing was kept; try again." in export.error
        assert not [n for n in media_storage().agency_names(alpha.schema_name) if "exports/" in n]
        event = Event.objects.get(kind="export_finished")
        assert event.title == "Your agency export failed"
    page = client.get("/settings/export/").content.decode()
    assert "Failed" in page and "Nothing was kept; try again." in page
    assert f"/settings/export/{export.pk}/download/" not in page
