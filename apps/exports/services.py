"""An agency's own export: owners download everything of their agency in one zip archive.

The archive holds, for each kind of record, a JSON file and a CSV file with every row (soft-deleted
ones too, with their `deleted_at`), every media file under `media/<post id>/`, and a
`manifest.json` (agency, product version, time, row counts, and each media file's sha256 as
stored). What would let someone act as the agency is left out: passwords, TikTok tokens, the
upload URLs TikTok handed out, invitation and API key hashes, chat webhook addresses and secrets.

A worker builds it (`exports_build`), streaming: rows are read in batches and media a piece at a
time, and the zip goes to the agency's storage as a multipart upload, so neither the worker's
memory nor its disk holds the archive. Progress (steps done of all: one per kind, one per media
file) is written as it goes and the page polls it. The link lasts EXPORT_LINK_DAYS; the daily
retention run removes expired archives. Asking, building, downloading are audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import logging
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.services import audit_record
from apps.common.fields import EncryptedTextField
from apps.common.outbox import notification_emit
from apps.exports.models import AgencyExport, ExportStatus
from apps.media.storage import ObjectWriter, media_storage
from apps.users.models import Role, User
from tenants.db import connection
from tenants.replicas import heavy_reads

logger = logging.getLogger(__name__)

# Fields never exported, whatever the model: they would let someone act as the agency.
SECRET_FIELDS = re.compile(r"password|token|secret|_hash$|^upload_url$|^claimed_at$")
# Chat webhook addresses are secrets themselves (Slack's carry the credential in the path).
SECRET_BY_MODEL = {
    "notifications.chatwebhook": {"url"},
    # The first characters of a client link's token: a piece of the key, not for the archive.
    "reviews.clientlink": {"prefix"},
}
BATCH = 2000
# An export with no progress for this long is taken for dead (its worker stopped): a new one may start.
STALLED_AFTER = dt.timedelta(minutes=15)
NOTICE_KIND = "export_finished"


@dataclass(frozen=True)
class Kind:
    """One kind of record in the archive: files `<stem>.json` and `<stem>.csv`."""

    stem: str
    label: str
    rows: Callable[[str], Iterator[dict[str, Any]]]  # read from the database alias given


def _model_rows(label: str) -> Callable[[str], Iterator[dict[str, Any]]]:
    def rows(using: str) -> Iterator[dict[str, Any]]:
        from django.apps import apps

        model = apps.get_model(label)
        fields = exported_fields(model)
        queryset = model._base_manager.using(using).order_by("pk").values_list(*(f.attname for f in fields))
        for values in queryset.iterator(chunk_size=BATCH):
            yield {f.attname: _plain(v) for f, v in zip(fields, values, strict=True)}

    return rows


def exported_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The model's columns an export carries (everything but secrets)."""
    hidden = SECRET_BY_MODEL.get(model._meta.label_lower, set())
    return [
        f
        for f in model._meta.concrete_fields
        if not isinstance(f, EncryptedTextField) and not SECRET_FIELDS.search(f.name) and f.name not in hidden
    ]


def _access_rows(using: str) -> Iterator[dict[str, Any]]:
    """Who may do what with each account (the per-account permissions owners set)."""
    from apps.accounts.models import TikTokAccountUserObjectPermission

    rows = TikTokAccountUserObjectPermission.objects.using(using).order_by(
        "user__email", "content_object_id", "permission"
    )
    for user_id, email, account_id, codename in rows.values_list(
        "user_id", "user__email", "content_object_id", "permission__codename"
    ).iterator(chunk_size=BATCH):
        yield {"user_id": str(user_id), "email": email, "account_id": str(account_id), "permission": codename}


KINDS = [
    Kind("members", "Members", _model_rows("users.user")),
    Kind("invitations", "Invitations", _model_rows("team.invitation")),
    Kind("accounts", "TikTok accounts", _model_rows("accounts.tiktokaccount")),
    Kind("account_access", "Account permissions", _access_rows),
    Kind("posts", "Posts", _model_rows("posts.post")),
    Kind("media", "Media records", _model_rows("posts.postmedia")),
    Kind("publish_attempts", "Publish attempts", _model_rows("posts.publishattempt")),
    Kind("account_snapshots", "Account analytics", _model_rows("analytics.accountsnapshot")),
    Kind("video_snapshots", "Video analytics", _model_rows("analytics.videosnapshot")),
    Kind("audit_log", "Audit log", _model_rows("audit.auditlog")),
    Kind("chat_webhooks", "Chat webhooks", _model_rows("notifications.chatwebhook")),
    Kind("api_keys", "API keys", _model_rows("api.apikey")),
    Kind("client_links", "Client links", _model_rows("reviews.clientlink")),
    Kind("client_consent", "Client consent record", _model_rows("reviews.consentrecord")),
    Kind("comments", "Comments on posts", _model_rows("comments.comment")),
    Kind("comment_mentions", "Mentions in comments", _model_rows("comments.commentmention")),
]


def _plain(value: Any) -> Any:
    """A value as JSON carries it."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    """A value as a CSV cell: lists and objects as JSON, empty for none."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- Asking for one ---


class ExportError(ValidationError):
    pass


def may_export(user: Any) -> bool:
    """Owners only: the archive holds the whole agency."""
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) == Role.OWNER


def export_request(*, by: User, request: HttpRequest | None = None) -> AgencyExport:
    """Queue an export for `by` (an owner); refused while another is still being built."""
    from apps.exports.tasks import exports_build

    if not may_export(by):
        raise ExportError("Only an owner can export the agency.")
    with transaction.atomic():
        # One at a time per agency: the lock orders two owners clicking at once.
        connection.cursor().execute("SELECT pg_advisory_xact_lock(hashtext('postline-agency-export'))")
        stalled_before = timezone.now() - STALLED_AFTER
        running = AgencyExport.objects.filter(
            status__in=(ExportStatus.QUEUED, ExportStatus.BUILDING), updated_at__gte=stalled_before
        ).first()
        if running is not None:
            raise ExportError(
                "An export is already being built. Wait for it to finish; you can download it from this page."
            )
        AgencyExport.objects.filter(
            status__in=(ExportStatus.QUEUED, ExportStatus.BUILDING), updated_at__lt=stalled_before
        ).update(status=ExportStatus.FAILED, error="It stopped making progress (its worker stopped).")
        export = AgencyExport.objects.create(requested_by=by, steps_total=len(KINDS))
        audit_record(action="export.requested", actor=by, obj=export, request=request)
        transaction.on_commit(lambda: exports_build.send(str(export.pk)))
    return export


# --- Building it ---


class _Sink(io.RawIOBase):
    """The zip's output: bytes go to the storage writer, hashed and counted on the way."""

    def __init__(self, writer: ObjectWriter) -> None:
        self.writer = writer
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.writer.write(piece)
        self.digest.update(piece)
        self.size += len(piece)
        return len(piece)


def _progress(export: AgencyExport, step: str, done: int, total: int | None = None) -> None:
    fields: dict[str, Any] = {"step": step[:200], "steps_done": done, "updated_at": timezone.now()}
    if total is not None:
        fields["steps_total"] = total
    AgencyExport.objects.filter(pk=export.pk).update(**fields)


def export_build(export_id: str) -> AgencyExport | None:
    """Build the archive of a queued export (the worker's job); a failure marks it failed, says
    why to its owner, and leaves no object behind."""
    export = AgencyExport.objects.filter(pk=export_id).first()
    if export is None or export.status not in (ExportStatus.QUEUED, ExportStatus.BUILDING):
        return export  # gone, or finished already (a redelivered message)
    from apps.posts.models import PostMedia

    # Rows and media records from the replica when there is one that keeps up (tenants.replicas).
    using = heavy_reads().alias
    media = list(
        PostMedia.objects.using(using)
        .filter(deleted_at__isnull=True, post__deleted_at__isnull=True)
        .exclude(file="")
        .order_by("post_id", "position", "pk")
    )
    total = len(KINDS) + len(media)
    AgencyExport.objects.filter(pk=export.pk).update(status=ExportStatus.BUILDING, steps_total=total)
    name = f"exports/{export.pk}.zip"
    storage = media_storage()
    writer = storage.open_writer(name, content_type="application/zip")
    sink = _Sink(writer)
    counts: dict[str, int] = {}
    try:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for done, kind in enumerate(KINDS):
                _progress(export, kind.label, done)
                counts[kind.stem] = _write_kind(archive, kind, using)
            files = _write_media(archive, media, lambda i, label: _progress(export, label, len(KINDS) + i))
            counts["media_files"] = len(files)
            archive.writestr("manifest.json", _manifest(export, counts, files))
        writer.complete()
    except Exception as exc:
        writer.abort()
        logger.exception("Export %s failed", export.pk)
        return _finish_failed(export, exc)
    now = timezone.now()
    with transaction.atomic():
        AgencyExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.READY,
            steps_done=total,
            step="",
            file_name=name,
            size_bytes=sink.size,
            sha256=sink.digest.hexdigest(),
            counts=counts,
            finished_at=now,
            expires_at=now + dt.timedelta(days=settings.EXPORT_LINK_DAYS),
        )
        export.refresh_from_db()
        audit_record(action="export.ready", obj=export, changes={"size_bytes": sink.size, "counts": counts})
        notification_emit(kind=NOTICE_KIND, obj=export, key=str(export.pk), ready=True)
    logger.info("Export %s ready: %s bytes", export.pk, sink.size)
    return export


def _finish_failed(export: AgencyExport, exc: Exception) -> AgencyExport:
    reason = "The archive could not be written to storage." if isinstance(exc, OSError) else ""
    reason = reason or "Something went wrong while building it."
    with transaction.atomic():
        AgencyExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED,
            error=f"{reason} Nothing was kept; try again.",
            finished_at=timezone.now(),
        )
        export.refresh_from_db()
        audit_record(action="export.failed", obj=export, changes={"error": type(exc).__name__})
        notification_emit(kind=NOTICE_KIND, obj=export, key=str(export.pk), ready=False)
    return export


def _write_kind(archive: zipfile.ZipFile, kind: Kind, using: str) -> int:
    """`<stem>.json` (an array of objects) then `<stem>.csv` (a header and a line per row)."""
    count = 0
    header: list[str] | None = None
    with archive.open(f"{kind.stem}.json", "w", force_zip64=True) as out:
        out.write(b"[")
        for row in kind.rows(using):
            header = header or list(row)
            out.write((b",\n" if count else b"\n") + json.dumps(row, ensure_ascii=False).encode())
            count += 1
        out.write(b"\n]\n")
    with archive.open(f"{kind.stem}.csv", "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        lines = csv.writer(text)
        if header is not None:
            lines.writerow(header)
            for row in kind.rows(using):
                lines.writerow([_cell(row.get(column)) for column in header])
        text.flush()
        text.detach()
    return count


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w.\- ]+", "_", name).strip(" .") or "file"
    return cleaned[-120:]


def _write_media(
    archive: zipfile.ZipFile, media: Iterable[Any], progress: Callable[[int, str], None]
) -> list[dict[str, Any]]:
    """Each media file, stored as it is (videos do not compress), with where it came from."""
    storage, files = media_storage(), []
    items = list(media)
    for index, item in enumerate(items):
        progress(index, f"Media file {index + 1} of {len(items)}")
        place = (item.position or 0) + 1
        path = f"media/{item.post_id}/{place:02d}-{_safe_name(item.original_name or 'file')}"
        digest, size = hashlib.sha256(), 0
        info = zipfile.ZipInfo(path, date_time=timezone.localtime(item.created_at).timetuple()[:6])
        info.compress_type = zipfile.ZIP_STORED
        with archive.open(info, "w", force_zip64=True) as out:
            if item.size_bytes:
                for piece in storage.iter_range(str(item.file.name), 0, item.size_bytes - 1):
                    out.write(piece)
                    digest.update(piece)
                    size += len(piece)
        if size != item.size_bytes:
            raise OSError(f"media {item.pk}: read {size} of {item.size_bytes} bytes")
        files.append(
            {
                "path": path,
                "media_id": str(item.pk),
                "post_id": str(item.post_id),
                "size": size,
                "sha256": digest.hexdigest(),
            }
        )
    return files


def _manifest(export: AgencyExport, counts: dict[str, int], files: list[dict[str, Any]]) -> str:
    from tenants.backup import product_version
    from tenants.models import Agency

    agency = Agency.objects.filter(schema_name=connection.schema_name).first()
    return json.dumps(
        {
            "agency": {"name": getattr(agency, "name", ""), "slug": getattr(agency, "slug", "")},
            "export_id": str(export.pk),
            "product_version": product_version(),
            "created_at": timezone.now().isoformat(),
            "counts": counts,
            "kinds": {kind.stem: {"json": f"{kind.stem}.json", "csv": f"{kind.stem}.csv"} for kind in KINDS},
            "media": files,
            "left_out": "passwords, TikTok tokens, TikTok upload URLs, invitation and API key hashes, "
            "chat webhook addresses and secrets",
        },
        indent=2,
        ensure_ascii=False,
    )


# --- Downloading, expiring ---


def export_pieces(export: AgencyExport) -> Iterator[bytes]:
    """The archive's bytes, a piece at a time."""
    yield from media_storage().iter_range(export.file_name, 0, export.size_bytes - 1)


def export_downloaded(*, export: AgencyExport, by: User, request: HttpRequest | None = None) -> None:
    AgencyExport.objects.filter(pk=export.pk).update(downloads=models.F("downloads") + 1)
    audit_record(action="export.downloaded", actor=by, obj=export, request=request)


def exports_expire(now: dt.datetime | None = None) -> int:
    """Remove the archives whose link expired (the daily retention run); returns how many."""
    now = now or timezone.now()
    expired = list(AgencyExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now))
    storage = media_storage()
    for export in expired:
        if export.file_name:
            storage.delete(export.file_name)
        AgencyExport.objects.filter(pk=export.pk).update(status=ExportStatus.EXPIRED, file_name="")
    return len(expired)
