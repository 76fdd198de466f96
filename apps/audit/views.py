"""The audit log page for owners and admins: filter, read, export the filtered rows as CSV."""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_tenants.utils import schema_context

from apps.audit.actions import action_label
from apps.audit.changes import change_lines
from apps.audit.exports import (
    audit_export_pieces,
    audit_export_request,
    csv_lines,
    entries_as_asked,
    is_large,
    stream_max_rows,
)
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditExport, AuditLog
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
from apps.common.links import id_urls
from apps.common.pagination import keyset_page
from apps.common.templatetags.days import day
from apps.common.text import shortened
from apps.exports.models import ExportStatus
from apps.users.models import User

PAGE_SIZE = 50


@dataclass(frozen=True)
class Row:
    """One entry as the page shows it."""

    entry: AuditLog
    action: str
    actor: str
    account: str
    changes: list[tuple[str, str]]
    post_link: bool
    # Written here rather than by template filters (50 rows made them most of the page's time):
    # the time in the viewer's zone, as ISO and as read, the object's name shortened to 80
    # characters, and the post's page when it still exists.
    when_iso: str = ""
    when: str = ""
    object_text: str = ""
    post_url: str = ""


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
    return form, dict(accounts)


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
        **_exports_context(),
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
        zone = zoneinfo.ZoneInfo(user.time_zone or "UTC")
        post_url = id_urls("posts:detail")
        rows = []
        for entry in page.rows:
            local = entry.created_at.astimezone(zone)
            rows.append(
                Row(
                    entry=entry,
                    action=action_label(entry.action),
                    actor=_actor(entry),
                    account=account_labels.get(str(entry.account_id), "") if entry.account_id else "",
                    changes=change_lines(entry.changes, entry.action, account_labels),
                    post_link=entry.object_id in posts,
                    when_iso=local.isoformat(),
                    # The day's words formatted once per process, the clock by strftime.
                    when=f"{day(local.date(), 'j M Y')}, {local:%H:%M:%S}",
                    object_text=shortened(entry.object_repr, 80),
                    post_url=post_url(entry.object_id) if post_url and entry.object_id in posts else "",
                )
            )
    context = _context(request, user, form, page=page, rows=rows)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "audit/list.html#log", context)
    return render(request, "audit/list.html", context)


@require_GET
@login_required
def audit_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """The filtered entries, all of them, as CSV; the export is itself audited. Up to
    AUDIT_EXPORT_STREAM_ROWS stream row by row; more are built by a worker, the person told when
    the file is ready (apps.audit.exports).

    Invalid filters export nothing: the page comes back with the errors next to the fields.
    """
    user = _admin(request)
    form, account_labels = _filter_form(request)
    if not form.is_valid():
        return render(request, "audit/list.html", _context(request, user, form), status=400)
    filters = form.filters(user.time_zone or "UTC")
    exported = audit_record(action="audit.exported", request=request, changes={"filters": form.describe()})
    entries = entries_as_asked(filters, exported.created_at, exported.pk)
    if is_large(entries):
        described = "; ".join(f"{form.fields[name].label}: {text}" for name, text in form.describe().items())
        audit_export_request(by=user, filters=filters, described=described, request_entry=exported)
        messages.success(
            request,
            f"This export holds more than {stream_max_rows():,} entries: it is being prepared. You will be "
            "told when it is ready, and can download it from this page.",
        )
        query = _query_string(request)
        return redirect(f"{reverse('audit:list')}{'?' + query if query else ''}")
    agency = request.tenant  # type: ignore[attr-defined]
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(user.time_zone or "UTC"))
    response = StreamingHttpResponse(
        _in_schema(agency.schema_name, csv_lines(entries, account_labels)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{agency.slug}-{today:%Y-%m-%d}.csv"'
    return response


def _in_schema(schema_name: str, lines: Iterator[str]) -> Iterator[str]:
    # The body is produced after the view has returned: enter the agency's schema again.
    with schema_context(schema_name):
        yield from lines


def _get_export(user: User, pk: uuid.UUID) -> AuditExport:
    """The one gate to a large export: owners and admins (as the log itself), 404 otherwise."""
    if not user.is_agency_admin:
        raise Http404("No such export.")
    export = AuditExport.objects.filter(pk=pk).first()
    if export is None:
        raise Http404("No such export.")
    return export


@require_GET
@login_required
def audit_exports(request: HtmxHttpRequest) -> HttpResponse:
    """The recent large exports and their progress (the page polls it while one is being built)."""
    _admin(request)
    return render(request, "audit/list.html#exports", _exports_context())


def _exports_context() -> dict[str, Any]:
    exports = list(AuditExport.objects.select_related("requested_by").order_by("-created_at")[:5])
    return {"exports": exports, "exports_polling": any(export.in_progress for export in exports)}


@require_GET
@login_required
def audit_export_download(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponseBase:
    user = _admin(request)
    export = _get_export(user, pk)
    if export.status != ExportStatus.READY or (export.expires_at and export.expires_at <= timezone.now()):
        raise Http404("This export is not ready or its link expired.")
    audit_record(action="audit.export_downloaded", request=request, obj=export)
    response = StreamingHttpResponse(audit_export_pieces(export), content_type="text/csv; charset=utf-8")
    response["Content-Length"] = str(export.size_bytes)
    agency = request.tenant  # type: ignore[attr-defined]
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{agency.slug}-{export.created_at:%Y-%m-%d-%H%M}.csv"'
    )
    return response
