"""A large audit log export is built by a real worker, not streamed: the admin who asked sees it
being prepared, is told when it is ready, and downloads the same CSV a streamed export would
have been; nobody else reaches it, and the retention run removes it when its link expires."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.exports import audit_exports_expire
from apps.audit.models import AuditExport, AuditLog
from apps.exports.models import ExportStatus
from apps.media.storage import media_storage
from apps.notifications.models import Event, Notification
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import client_for, wait_for
from tests.factories import UserFactory


def admin_client(agency: Agency, role: str = Role.ADMIN) -> tuple[Client, User]:
    client = client_for(agency)
    with schema_context(agency.schema_name):
        person = UserFactory(role=role, email=f"{role}@job.example")
        client.force_login(person)
    return client, person


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_a_large_export_is_built_by_a_worker_and_downloaded_once_ready(
    make_agency: Any, worker: Any, django_db_blocker: Any, settings: Any
) -> None:
    # Given an agency whose log holds 120 entries, 20 of them for one action, and a limit of 25
    # for exports that stream from the page
    settings.AUDIT_EXPORT_STREAM_ROWS = 25
    agency, other = make_agency(), make_agency()
    with django_db_blocker.unblock():
        with schema_context(agency.schema_name):
            AuditLog.objects.bulk_create(
                [
                    AuditLog(action="post.created" if n % 6 else "post.cancelled", object_repr=f"post {n}")
                    for n in range(120)
                ]
            )
        client, admin = admin_client(agency)

        # A filtered export under the limit still streams at once
        small = client.get("/audit/export.csv", {"action": "post.cancelled"})
        assert small.status_code == 200
        assert len(csv_rows(b"".join(small.streaming_content))) == 20
        with schema_context(agency.schema_name):
            assert not AuditExport.objects.exists()

        # When the admin exports everything (more than the limit)
        response = client.get("/audit/export.csv")
        assert response.status_code == 302 and response["Location"] == "/audit/"
        page = client.get("/audit/").content.decode()
        assert "it is being prepared" in page
        with schema_context(agency.schema_name):
            export = AuditExport.objects.get()
            asked = AuditLog.objects.filter(created_at__lte=export.up_to).exclude(pk=export.request_entry_id)
            expected_ids, expected_count = {str(e.object_repr) for e in asked}, asked.count()
        # Then the page says it is being prepared and polls until the worker has written it
        assert 'hx-get="/audit/exports/"' in page and "Large exports" in page

        def ready() -> AuditExport | None:
            with schema_context(agency.schema_name):
                export.refresh_from_db()
            return export if export.status == ExportStatus.READY else None

        wait_for(ready, timeout=60)
        fragment = client.get("/audit/exports/").content.decode()
        assert "hx-trigger" not in fragment and "Download CSV" in fragment
        assert export.rows_done == expected_count > 120

        # And the download holds every entry as the log was when asked, as the streamed CSV does
        download = client.get(f"/audit/exports/{export.pk}/download/")
        assert download.status_code == 200 and download["Content-Type"] == "text/csv; charset=utf-8"
        rows = csv_rows(b"".join(download.streaming_content))
        assert {row["object"] for row in rows} == expected_ids
        assert len(rows) == expected_count

        # And the admin who asked was told, and nobody else
        with schema_context(agency.schema_name):
            event = Event.objects.get(kind="audit_export_finished")
            assert "ready to download" in event.title and event.path == "/audit/"
            assert set(Notification.objects.filter(event=event).values_list("recipient_id", flat=True)) == {
                admin.pk
            }

        # And an editor of the agency, or another agency's admin, finds no such export
        editor, _ = admin_client(agency, Role.EDITOR)
        stranger, _ = admin_client(other)
        for person in (editor, stranger):
            assert person.get(f"/audit/exports/{export.pk}/download/").status_code == 404
        assert editor.get("/audit/exports/").status_code == 404

        # And once its link expired, the retention run removes the file and the link answers 404
        with schema_context(agency.schema_name):
            assert media_storage().exists(export.file_name)
            assert audit_exports_expire(timezone.now() + dt.timedelta(days=8)) == 1
            assert not media_storage().exists(export.file_name)
        assert client.get(f"/audit/exports/{export.pk}/download/").status_code == 404


@pytest.mark.django_db
def test_an_export_under_the_limit_streams_and_starts_no_job(alpha: Agency, settings: Any) -> None:
    settings.AUDIT_EXPORT_STREAM_ROWS = 1000
    client, _ = admin_client(alpha)
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    assert csv_rows(b"".join(response.streaming_content))
    with schema_context(alpha.schema_name):
        assert not AuditExport.objects.exists()
