"""Client reports: the page (choose a client and a period), and the same figures as CSV and PDF."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from apps.audit.services import audit_record
from apps.brand.selectors import brand_of
from apps.reports.forms import ReportForm
from apps.reports.pdf import report_pdf_bytes
from apps.reports.selectors import DEFAULT_DAYS, PRESETS, ClientReport, client_report, clients_for
from apps.users.models import User
from tenants.models import Agency
from tenants.replicas import heavy_reads


def _agency(request: HttpRequest) -> Agency:
    return request.tenant  # type: ignore[attr-defined]


def _today(agency: Agency) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(agency.default_time_zone)).date()


def _form(request: HttpRequest, clients: list[str]) -> tuple[ReportForm, str]:
    """The form from the query (defaults: the first client, the last 30 days) and the client
    asked for; a client the reader may not see is not found."""
    today = _today(_agency(request))
    data = {
        "client": request.GET.get("client", clients[0] if clients else ""),
        "start": request.GET.get("start", (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat()),
        "end": request.GET.get("end", today.isoformat()),
    }
    if data["client"] not in clients:
        raise Http404("No such client.")
    return ReportForm(data, today=today), data["client"]


def _report(request: HttpRequest) -> ClientReport:
    """The report a download asks for: 404 for a client the reader may not see, 404 too for a
    period the page would refuse (the page says why)."""
    user: User = request.user  # type: ignore[assignment]
    form, client = _form(request, clients_for(user))
    if not form.is_valid():
        raise Http404("Choose a valid period on the reports page.")
    return client_report(
        user=user,
        client=client,
        first=form.cleaned_data["start"],
        last=form.cleaned_data["end"],
        time_zone=_agency(request).default_time_zone,
        using=heavy_reads().alias,  # from the replica when there is one that keeps up
    )


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(cell: Any) -> Any:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell


class _SafeWriter:
    """csv.writer whose text cells (titles, names: typed by people) never start a formula."""

    def __init__(self, out: io.StringIO) -> None:
        self.writer = csv.writer(out)

    def writerow(self, row: Any) -> None:
        self.writer.writerow([_safe(cell) for cell in row])

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)


_COUNTS = ("Views", "Likes", "Comments", "Shares")


def _account_cell(account: Any) -> str:
    """The account as a cell: its TikTok username without the "@" a spreadsheet would read as a
    formula (its display name, made safe, without one)."""
    return str(account.username or account)


def _filename(report: ClientReport, extension: str) -> str:
    return f"report-{slugify(report.client) or 'client'}-{report.first}-{report.last}.{extension}"


def _audit(request: HttpRequest, report: ClientReport, kind: str) -> None:
    audit_record(
        action="report.downloaded",
        request=request,
        changes={"client": report.client, "format": kind, "from": str(report.first), "to": str(report.last)},
    )


@require_GET
@login_required
def report_page(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    clients = clients_for(user)
    context: dict[str, Any] = {"clients": clients, "report": None, "form": None}
    if clients or "client" in request.GET:  # a client asked for is one of theirs, or not found
        form, client = _form(request, clients)
        context["form"] = form
        today = _today(_agency(request))
        context["presets"] = [
            (
                days,
                urlencode(
                    {
                        "client": client,
                        "start": (today - dt.timedelta(days=days - 1)).isoformat(),
                        "end": today.isoformat(),
                    }
                ),
            )
            for days in PRESETS
        ]
        if form.is_valid():
            report = client_report(
                user=user,
                client=client,
                first=form.cleaned_data["start"],
                last=form.cleaned_data["end"],
                time_zone=_agency(request).default_time_zone,
                using=heavy_reads().alias,
            )
            context["report"] = report
            context["query"] = urlencode(
                {"client": client, "start": report.first.isoformat(), "end": report.last.isoformat()}
            )
    return render(request, "reports/page.html", context)


@require_GET
@login_required
def report_csv(request: HttpRequest) -> HttpResponse:
    report = _report(request)
    agency = _agency(request)
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(["Agency", agency.name])
    writer.writerow(["Client", report.client])
    writer.writerow(["From", report.first.isoformat()])
    writer.writerow(["To", report.last.isoformat()])
    writer.writerow([])
    writer.writerow(["Figure", "Value"])
    writer.writerows(report.summary())
    writer.writerow([])
    writer.writerow(["TikTok account", "Posts published", *_COUNTS, "Follower growth", "Followers"])
    for line in report.lines:
        writer.writerow(
            [
                _account_cell(line.account),
                line.posts_published,
                *(line.gained[metric] for metric in ("views", "likes", "comments", "shares")),
                line.follower_growth,
                line.followers_end,
            ]
        )
    writer.writerow([])
    writer.writerow(["Top post", "TikTok account", *_COUNTS])
    for top in report.top_posts:
        counts = (top.views, top.likes, top.comments, top.shares)
        writer.writerow([top.title, _account_cell(top.account), *counts])
    _audit(request, report, "csv")
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "csv")}"'
    return response


@require_GET
@login_required
def report_pdf(request: HttpRequest) -> HttpResponse:
    report = _report(request)
    agency = _agency(request)
    pdf = report_pdf_bytes(report=report, agency=agency, brand=brand_of(agency))
    _audit(request, report, "pdf")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "pdf")}"'
    return response
