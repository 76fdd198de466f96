"""The audit log page for owners and admins: filter, read, export the filtered rows as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import json
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_tenants.utils import schema_context

from apps.audit.actions import action_label
from apps.audit.changes import change_lines, changes_text
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditLog
from apps.audit.selectors import (
    AUDIT_ORDER,
    audit_accounts,
    audit_actions_present,
    audit_actors,
    audit_entries,
    existing_post_ids,
)
from apps.audit.services import audit_record
from apps.common.http import HtmxHttpRequest
from apps.common.pagination import keyset_page
from apps.users.models import User

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
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


@dataclass(frozen=True)
class Row:
    """One entry as the page shows it."""

    entry: AuditLog
    action: str
    actor: str
    account: str
    changes: list[tuple[str, str]]
    post_link: bool


def _admin(request: HtmxHttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not user.is_agency_admin:
        raise Http404("No such page.")
    return user


def _filter_form(request: HtmxHttpRequest) -> tuple[AuditFilterForm, dict[str, str]]:
    """The bound filter form and the account labels by id (every account, removed ones too)."""
    accounts = audit_accounts()
    form = AuditFilterForm(
        request.GET, actors=audit_actors(), actions=audit_actions_present(), accounts=accounts
    )
    labels = {str(a.pk): f"{a} (removed)" if a.is_deleted else str(a) for a in accounts}
    return form, labels


def _actor(entry: AuditLog) -> str:
    if entry.actor_email:
        return entry.actor_email
    return "Signed-out visitor" if entry.ip else "System"


def _query_string(request: HtmxHttpRequest) -> str:
    """The filters alone (for the export link): without the page's position."""
    query = request.GET.copy()
    for name in ("page", "after", "before"):
        query.pop(name, None)
    return query.urlencode()


def _context(request: HtmxHttpRequest, user: User, form: AuditFilterForm, **extra: Any) -> dict[str, Any]:
    return {
        "form": form,
        "page": None,
        "rows": [],
        "filters": _query_string(request),
        "filtered": any(form.data.get(name) for name in form.fields),
        "time_zone": user.time_zone or "UTC",
        **extra,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def audit_list(request: HtmxHttpRequest) -> HttpResponse:
    user = _admin(request)
    form, account_labels = _filter_form(request)
    page = None
    rows: list[Row] = []
    if form.is_valid():
        entries = audit_entries(form.filters(user.time_zone or "UTC"))
        page = keyset_page(entries, AUDIT_ORDER, request.GET, size=PAGE_SIZE)
        posts = existing_post_ids(e.object_id for e in page.rows if e.object_type == "posts.post")
        rows = [
            Row(
                entry=entry,
                action=action_label(entry.action),
                actor=_actor(entry),
                account=account_labels.get(str(entry.account_id), "") if entry.account_id else "",
                changes=change_lines(entry.changes, entry.action, account_labels),
                post_link=entry.object_id in posts,
            )
            for entry in page.rows
        ]
    context = _context(request, user, form, page=page, rows=rows)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "audit/list.html#log", context)
    return render(request, "audit/list.html", context)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(
    schema_name: str, entries: QuerySet[AuditLog], account_labels: dict[str, str]
) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The body is produced after the view has returned: enter the agency's schema again.
    with schema_context(schema_name):
        yield writer.writerow(CSV_COLUMNS)
        for entry in entries.iterator(chunk_size=EXPORT_CHUNK):
            yield writer.writerow(
                [
                    _cell(entry.created_at.astimezone(dt.UTC).isoformat()),
                    _cell(entry.actor_email),
                    _cell(entry.action),
                    _cell(entry.object_type),
                    _cell(entry.object_id),
                    _cell(entry.object_repr),
                    _cell(account_labels.get(str(entry.account_id), entry.account_id or "")),
                    _cell(entry.ip),
                    _cell(entry.user_agent),
                    _cell(changes_text(entry.changes, entry.action, account_labels)),
                    _cell(json.dumps(entry.changes, sort_keys=True, ensure_ascii=False)),
                ]
            )


@require_GET
@login_required
def audit_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """The filtered entries, all of them, as CSV streamed row by row; the export is itself audited.

    Invalid filters export nothing: the page comes back with the errors next to the fields.
    """
    user = _admin(request)
    form, account_labels = _filter_form(request)
    if not form.is_valid():
        return render(request, "audit/list.html", _context(request, user, form), status=400)
    exported = audit_record(action="audit.exported", request=request, changes={"filters": form.describe()})
    # The log as it was when asked for: later entries, this export's own included, are left out.
    entries = (
        audit_entries(form.filters(user.time_zone or "UTC"))
        .filter(created_at__lte=exported.created_at)
        .exclude(pk=exported.pk)
    )
    agency = request.tenant  # type: ignore[attr-defined]
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(user.time_zone or "UTC"))
    response = StreamingHttpResponse(
        _csv_lines(agency.schema_name, entries, account_labels), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{agency.slug}-{today:%Y-%m-%d}.csv"'
    return response
