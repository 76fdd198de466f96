"""Retention: soft-deleted rows are removed for good once they have been deleted longer than their
model's retention (RETENTION_DAYS), with what depends on them and the media objects they named.

Rows go through Django's deletion collector, so what cascades from a row (a post's media rows and
publish attempts, an account's permission rows, ...) goes with it and what protects it keeps it:
an account that still has posts, a person the audit log names. Those are kept, counted and named
in the report, and tried again on the next run. Media objects are deleted from storage once the
rows' transaction has committed (an object left by a failure there is never served). Audit entries
are kept unless RETENTION_DAYS names `audit.auditlog`: they are then removed by age, the append-only
trigger set aside for that one statement in the same transaction. Each agency's removals are one
entry in its own audit log ("retention.purged").

`manage.py purge_expired [--dry-run]` runs it at once (printing what it removes, or would);
the scheduler sends it daily at RETENTION_HOUR_UTC, one message per agency.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.common.sql import quote_ident
from apps.media.storage import media_storage
from tenants.db import connection
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)

AUDIT_LABEL = "audit.auditlog"
# The append-only log's row trigger (apps/audit/migrations/0003_audit_log_append_only.py).
AUDIT_TRIGGER = "audit_log_no_update_delete"
BATCH = 200


@dataclass
class PurgeReport:
    """What one agency's run removed (or, dry, would remove)."""

    slug: str
    removed: Counter[str] = field(default_factory=Counter)  # model label -> rows, cascades included
    media: list[str] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)  # model label -> expired rows something protects
    exports: int = 0  # agency exports whose link expired: their archives

    @property
    def anything(self) -> bool:
        return bool(self.removed or self.media or self.kept or self.exports)

    def describe(self, *, dry_run: bool) -> str:
        verb = "would remove" if dry_run else "removed"
        parts = [f"{count} {label}" for label, count in sorted(self.removed.items())]
        line = f"{self.slug}: {verb} " + (", ".join(parts) or "nothing")
        if self.media:
            line += f" and {len(self.media)} media object(s)"
        if self.exports:
            line += f"; {self.exports} expired export archive(s)"
        if self.kept:
            kept = ", ".join(f"{count} {label}" for label, count in sorted(self.kept.items()))
            line += f"; kept {kept} (still referred to: a post's account, a person the audit log names)"
        return line


def retention_policy() -> list[tuple[type[models.Model], int]]:
    """RETENTION_DAYS as (model, days), in an order where what refers to a row goes before it."""
    policy = []
    for label, days in settings.RETENTION_DAYS.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise ImproperlyConfigured(f"RETENTION_DAYS names {label!r}, which is no model.") from None
        names = {f.name for f in model._meta.get_fields()}
        if label != AUDIT_LABEL and "deleted_at" not in names:
            raise ImproperlyConfigured(f"RETENTION_DAYS names {label}, whose rows are never soft-deleted.")
        policy.append((model, days))
    order = [
        "posts.postmedia",
        "posts.post",
        "media.mediaitem",
        "team.invitation",
        "accounts.tiktokaccount",
        "users.user",
    ]
    rank = {label: i for i, label in enumerate(order)}
    return sorted(
        policy,
        key=lambda item: (item[0]._meta.label_lower == AUDIT_LABEL, rank.get(item[0]._meta.label_lower, 50)),
    )


def agency_purge_expired(
    *, agency: Agency, dry_run: bool = False, now: dt.datetime | None = None
) -> PurgeReport:
    """Remove the agency's rows past their retention (see the module's docstring)."""
    now = now or timezone.now()
    report = PurgeReport(slug=agency.slug)
    cutoffs: dict[str, str] = {}
    with schema_context(agency.schema_name):
        for model, days in retention_policy():
            label = model._meta.label_lower
            cutoff = now - dt.timedelta(days=days)
            cutoffs[label] = cutoff.isoformat()
            if label == AUDIT_LABEL:
                _purge_audit(model, cutoff, report, dry_run)
                continue
            expired = list(
                model._base_manager.filter(deleted_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)
            )
            for start in range(0, len(expired), BATCH):
                _purge_batch(agency, model, expired[start : start + BATCH], report, dry_run)
        report.exports = _expire_exports(now, dry_run)
        if report.removed and not dry_run:
            from apps.audit.services import audit_record

            audit_record(
                action="retention.purged",
                obj=agency,
                changes={"removed": dict(report.removed), "media": len(report.media), "cutoffs": cutoffs},
            )
    connection.set_schema_to_public()
    if (report.removed or report.exports) and not dry_run:
        logger.info("Retention: %s", report.describe(dry_run=False))
    return report


def _expire_exports(now: dt.datetime, dry_run: bool) -> int:
    """The agency's exports (whole-agency archives, large audit log exports) whose download link
    expired lose their file."""
    from apps.audit.exports import audit_exports_expire
    from apps.audit.models import AuditExport
    from apps.exports.models import AgencyExport, ExportStatus
    from apps.exports.services import exports_expire

    if dry_run:
        return sum(
            model.objects.filter(status=ExportStatus.READY, expires_at__lte=now).count()
            for model in (AgencyExport, AuditExport)
        )
    return exports_expire(now) + audit_exports_expire(now)


def _purge_batch(
    agency: Agency, model: type[models.Model], pks: list[Any], report: PurgeReport, dry_run: bool
) -> None:
    with transaction.atomic():
        rows = list(model._base_manager.select_for_update().filter(pk__in=pks))
        collector, kept = _collector(rows)
        report.kept[model._meta.label_lower] += kept
        if collector is None:
            return
        removed, files, by_label = _what(collector)
        report.removed.update(removed)
        report.media += files
        if dry_run:
            return
        collector.delete()
        _public_rows_delete(agency, by_label)
        # An object another row still names stays (a library item and the posts reusing it share one).
        files = _unnamed(files)
        if files:
            schema = agency.schema_name
            transaction.on_commit(lambda: _delete_files(schema, files))


def _collector(rows: list[models.Model]) -> tuple[Collector | None, int]:
    """A collector for every row that nothing protects, and how many were kept."""

    def collect(objs: Iterable[models.Model]) -> Collector:
        collector = Collector(using="default", origin=None)
        collector.collect(list(objs))
        return collector

    if not rows:
        return None, 0
    try:
        return collect(rows), 0
    except (ProtectedError, RestrictedError):
        pass
    free = []
    for row in rows:
        try:
            collect([row])
        except (ProtectedError, RestrictedError):
            continue
        free.append(row)
    return (collect(free) if free else None), len(rows) - len(free)


def _file_fields(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, models.FileField)]


def _what(collector: Collector) -> tuple[Counter[str], list[str], dict[str, list[Any]]]:
    """(rows per model label, media names, pks per model label) the collector would delete."""
    removed: Counter[str] = Counter()
    files: list[str] = []
    by_label: dict[str, list[Any]] = {}
    for model, instances in collector.data.items():
        label = model._meta.label_lower
        removed[label] += len(instances)
        by_label.setdefault(label, []).extend(obj.pk for obj in instances)
        for name in _file_fields(model):
            files += [str(getattr(obj, name)) for obj in instances if getattr(obj, name)]
    for queryset in collector.fast_deletes:
        model = queryset.model
        label = model._meta.label_lower
        names = _file_fields(model)
        values = list(queryset.values_list("pk", *names))
        removed[label] += len(values)
        by_label.setdefault(label, []).extend(row[0] for row in values)
        files += [str(value) for row in values for value in row[1:] if value]
    return removed, sorted(set(files)), by_label


def _unnamed(names: list[str]) -> list[str]:
    """Those of `names` no row of the agency's (left) names in a file field."""
    if not names:
        return names
    tenant_apps = set(settings.TENANT_APPS)
    named: set[str] = set()
    for model in apps.get_models():
        if model._meta.app_config is None or model._meta.app_config.name not in tenant_apps:
            continue
        for field_name in _file_fields(model):
            named.update(
                str(value)
                for value in model._base_manager.filter(**{f"{field_name}__in": names}).values_list(
                    field_name, flat=True
                )
            )
    return [name for name in names if name not in named]


def _public_rows_delete(agency: Agency, by_label: dict[str, list[Any]]) -> None:
    """What the public schema keeps for rows that are gone: a post's due jobs, the webhook route of
    a creator no account of the agency is for any more."""
    from apps.publishing.models import DueJob
    from apps.tiktok.models import TikTokRoute

    if posts := by_label.get("posts.post"):
        DueJob.objects.filter(schema_name=agency.schema_name, post_id__in=posts).delete()
    if by_label.get("accounts.tiktokaccount"):
        from apps.accounts.models import TikTokAccount

        still = set(TikTokAccount.all_objects.values_list("open_id", flat=True))
        TikTokRoute.objects.filter(agency_id=agency.pk).exclude(open_id__in=still).delete()


def _delete_files(schema: str, names: list[str]) -> None:
    storage = media_storage()
    with schema_context(schema):
        for name in names:
            try:
                storage.delete(name)
            except Exception:  # the row is gone: an object left behind is never served
                logger.exception("Retention: could not delete media %s of %s", name, schema)


def _purge_audit(model: type[models.Model], cutoff: dt.datetime, report: PurgeReport, dry_run: bool) -> None:
    table = quote_ident(connection.schema_name, model._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE created_at < %s", [cutoff])  # noqa: S608
            count = int(cursor.fetchone()[0])
        else:
            # The log refuses every change; a retention an operator set is the one exception, made
            # by this statement alone (ALTER TABLE holds the table's lock until the transaction ends:
            # never queue long behind a writer, whom others would then queue behind). Checks deferred
            # on rows written earlier in the transaction run first: ALTER TABLE refuses pending ones.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {quote_ident(AUDIT_TRIGGER)}")
            cursor.execute(f"DELETE FROM {table} WHERE created_at < %s", [cutoff])  # noqa: S608
            count = cursor.rowcount
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {quote_ident(AUDIT_TRIGGER)}")
    if count:
        report.removed[AUDIT_LABEL] += count


def purge_expired_agencies() -> list[Agency]:
    """The agencies retention runs for: all but deleted ones (purged whole after their grace)."""
    return list(Agency.objects.exclude(status=AgencyStatus.DELETED).order_by("slug"))
