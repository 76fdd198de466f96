"""The audit log as CSV: streamed from the page while it is small, built by a worker when large.

An export of up to AUDIT_EXPORT_STREAM_ROWS entries streams straight to the browser (a few
seconds). A larger one (at about 0.1 ms a row, hundreds of thousands would outlast a proxy's
patience) becomes an `AuditExport`: a worker on the `exports` queue writes the same CSV to the
agency's storage as a multipart upload, a batch of rows at a time (flat memory), counting rows as
it goes for the page; the person who asked is told when it is ready, and downloads it from the
audit page while the link lasts (EXPORT_LINK_DAYS; the daily retention run removes it after).
Either way the log is exported as it was when asked for, and the export is itself audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.audit.changes import changes_text
from apps.audit.models import AuditExport, AuditLog
from apps.audit.selectors import AuditFilters, audit_accounts, audit_entries
from apps.common.outbox import notification_emit
from apps.exports.models import ExportStatus
from apps.media.storage import media_storage
from apps.users.models import User

logger = logging.getLogger(__name__)

CHUNK = 2000
CSV_COLUMNS = [
    "time (UTC)",
    "actor email",
    "action",
    "object type",
    "object id",
    "object",
    "account",
    "IP",
    "user agent",
    "changes",
    "changes (JSON)",  # the entry as recorded, for tools
]
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NOTICE_KIND = "audit_export_finished"


def stream_max_rows() -> int:
    return int(settings.AUDIT_EXPORT_STREAM_ROWS)


def is_large(entries: QuerySet[AuditLog]) -> bool:
    """Whether more than AUDIT_EXPORT_STREAM_ROWS entries match (read up to that many index
    entries, never counted whole)."""
    limit = stream_max_rows()
    return entries.order_by()[limit : limit + 1].exists()


def account_labels() -> dict[str, str]:
    """Every account's label by id, removed ones too (the log names accounts by id)."""
    return dict(audit_accounts())


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(entries: QuerySet[AuditLog], labels: dict[str, str]) -> Iterator[str]:
    """The header, then one line per entry, read CHUNK at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries.iterator(chunk_size=CHUNK):
        yield writer.writerow(
            [
                _cell(entry.created_at.astimezone(dt.UTC).isoformat()),
                _cell(entry.actor_email),
                _cell(entry.action),
                _cell(entry.object_type),
                _cell(entry.object_id),
                _cell(entry.object_repr),
                _cell(labels.get(str(entry.account_id), entry.account_id or "")),
                _cell(entry.ip),
                _cell(entry.user_agent),
                _cell(changes_text(entry.changes, entry.action, labels)),
                _cell(json.dumps(entry.changes, sort_keys=True, ensure_ascii=False)),
            ]
        )


def entries_as_asked(filters: AuditFilters, up_to: dt.datetime, request_entry_id: Any) -> QuerySet[AuditLog]:
    """The matching entries as the log was when the export was asked for: later ones, the
    request's own entry included, left out."""
    return audit_entries(filters).filter(created_at__lte=up_to).exclude(pk=request_entry_id)


# --- Filters kept with a job ---


def filters_json(filters: AuditFilters) -> dict[str, Any]:
    return {
        "actor": filters.actor,
        "action": filters.action,
        "account_id": str(filters.account_id) if filters.account_id else None,
        "since": filters.since.isoformat() if filters.since else None,
        "before": filters.before.isoformat() if filters.before else None,
    }


def filters_from_json(data: dict[str, Any]) -> AuditFilters:
    def when(value: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    return AuditFilters(
        actor=data.get("actor") or "",
        action=data.get("action") or "",
        account_id=uuid.UUID(data["account_id"]) if data.get("account_id") else None,
        since=when(data.get("since")),
        before=when(data.get("before")),
    )


# --- Large exports, as a job ---


def audit_export_request(
    *, by: User, filters: AuditFilters, described: str, request_entry: AuditLog
) -> AuditExport:
    """Queue a worker's build of the export `request_entry` recorded."""
    from apps.audit.tasks import audit_exports_build

    export = AuditExport.objects.create(
        requested_by=by,
        filters=filters_json(filters),
        described=described[:300],
        up_to=request_entry.created_at,
        request_entry_id=request_entry.pk,
    )
    transaction.on_commit(lambda: audit_exports_build.send(str(export.pk)))
    return export


def audit_export_build(export_id: str) -> AuditExport | None:
    """Write the export's CSV to storage (the worker's job). A failure marks it failed, tells the
    person who asked, and leaves no object behind."""
    export = AuditExport.objects.filter(pk=export_id).first()
    if export is None or export.status not in (ExportStatus.QUEUED, ExportStatus.BUILDING):
        return export  # gone, or finished already (a redelivered message)
    AuditExport.objects.filter(pk=export.pk).update(status=ExportStatus.BUILDING, updated_at=timezone.now())
    entries = entries_as_asked(filters_from_json(export.filters), export.up_to, export.request_entry_id)
    name = f"audit-exports/{export.pk}.csv"
    writer = media_storage().open_writer(name, content_type="text/csv")
    size = rows = 0
    pending: list[bytes] = []
    try:
        for index, line in enumerate(csv_lines(entries, account_labels())):
            piece = line.encode()
            pending.append(piece)
            size += len(piece)
            rows = index  # the header is line 0
            if len(pending) >= CHUNK:
                writer.write(b"".join(pending))
                pending.clear()
                AuditExport.objects.filter(pk=export.pk).update(rows_done=rows, updated_at=timezone.now())
        writer.write(b"".join(pending))
        writer.complete()
    except Exception as exc:
        writer.abort()
        logger.exception("Audit export %s failed", export.pk)
        with transaction.atomic():
            AuditExport.objects.filter(pk=export.pk).update(
                status=ExportStatus.FAILED,
                error=f"The export could not be written ({type(exc).__name__}). Try again.",
                finished_at=timezone.now(),
            )
            export.refresh_from_db()
            notification_emit(kind=NOTICE_KIND, obj=export, key=str(export.pk), ready=False)
        return export
    now = timezone.now()
    with transaction.atomic():
        AuditExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.READY,
            rows_done=rows,
            file_name=name,
            size_bytes=size,
            finished_at=now,
            expires_at=now + dt.timedelta(days=settings.EXPORT_LINK_DAYS),
        )
        export.refresh_from_db()
        notification_emit(kind=NOTICE_KIND, obj=export, key=str(export.pk), ready=True)
    logger.info("Audit export %s ready: %s rows, %s bytes", export.pk, rows, size)
    return export


def audit_export_pieces(export: AuditExport) -> Iterator[bytes]:
    """The built CSV, from storage, a piece at a time."""
    yield from media_storage().iter_range(export.file_name, 0, export.size_bytes - 1)


def audit_exports_expire(now: dt.datetime | None = None) -> int:
    """Remove the files of exports whose link expired (the daily retention run); how many."""
    now = now or timezone.now()
    expired = list(AuditExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now))
    storage = media_storage()
    for export in expired:
        if export.file_name:
            storage.delete(export.file_name)
    AuditExport.objects.filter(pk__in=[e.pk for e in expired]).update(
        status=ExportStatus.EXPIRED, file_name="", updated_at=now
    )
    return len(expired)
