"""The agency's export page (owners only; 404 for anyone else): ask for an export, watch it being
built, download it while its link lasts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.exports.models import AgencyExport
from apps.exports.services import ExportError, export_downloaded, export_pieces, export_request, may_export
from apps.mfa.reauth import reauth_prompt, reauth_refusal
from apps.users.models import User

SHOWN = 10


def _owner(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not may_export(user):
        raise Http404("No such page.")
    return user


def _export(pk: uuid.UUID) -> AgencyExport:
    export = AgencyExport.objects.select_related("requested_by").filter(pk=pk).first()
    if export is None:
        raise Http404("No such export.")
    return export


def _page(
    request: HttpRequest, *, error: str = "", reauth: dict[str, object] | None = None, status: int = 200
) -> HttpResponse:
    exports = list(AgencyExport.objects.select_related("requested_by")[:SHOWN])
    context = {
        "exports": exports,
        "error": error,
        "busy": any(e.in_progress for e in exports),
        "link_days": settings.EXPORT_LINK_DAYS,
        **(reauth if reauth is not None else reauth_prompt(request)),
    }
    return render(request, "exports/page.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def export_page(request: HttpRequest) -> HttpResponse:
    user = _owner(request)
    if request.method == "GET":
        return _page(request)
    if (refusal := reauth_refusal(request)) is not None:
        return _page(request, reauth=refusal, status=400)
    try:
        export_request(by=user, request=request)
    except ExportError as exc:
        return _page(request, error=" ".join(exc.messages), status=409)
    messages.success(request, "Export started. It is built in the background; this page shows its progress.")
    return redirect("exports:page")


@never_cache
@require_GET
@login_required
def export_row(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """One export's row (htmx polls it while the export is being built)."""
    _owner(request)
    return render(request, "exports/_row.html", {"export": _export(pk)})


@never_cache
@require_GET
@login_required
def export_download(request: HttpRequest, pk: uuid.UUID) -> HttpResponse | StreamingHttpResponse:
    """The archive, streamed from storage, while its link lasts."""
    user = _owner(request)
    export = _export(pk)
    if not export.downloadable:
        messages.error(
            request,
            "That export can no longer be downloaded (its link expired or it did not finish). "
            "Start a new one.",
        )
        return redirect("exports:page")
    export_downloaded(export=export, by=user, request=request)
    response = StreamingHttpResponse(export_pieces(export), content_type="application/zip")
    slug = getattr(request, "tenant", None)
    stem = getattr(slug, "slug", "agency")
    response["Content-Disposition"] = (
        f'attachment; filename="postline-{stem}-{export.created_at:%Y-%m-%d}.zip"'
    )
    response["Content-Length"] = str(export.size_bytes)
    response["Cache-Control"] = "private, no-store"
    return response
