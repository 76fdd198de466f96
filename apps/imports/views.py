"""The bulk import's pages: upload a file, choose its columns, see every row checked, confirm,
watch the import and read its summary; and the posts list's CSV export in the same columns.

Only people who may draft for an account reach the import (404 for anyone else), and an import
only for the person who uploaded it. The export holds only posts the viewer may see."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from apps.accounts.models import SECRET_FIELDS
from apps.accounts.permissions import Perm, accounts_with
from apps.common.http import HtmxHttpRequest
from apps.imports.columns import FIELDS
from apps.imports.files import MAX_BYTES, MAX_ROWS, FileRefused
from apps.imports.models import ImportMode, ImportStatus, PostImport
from apps.imports.services import (
    ImportRefused,
    export_lines,
    import_confirm,
    import_map,
    import_upload,
    mapping_errors,
    posts_for_export,
    rows_check,
)
from apps.posts.models import Post
from apps.posts.selectors import posts_filtered
from apps.users.models import User

RECENT = 5


def _importer(request: HtmxHttpRequest) -> User:
    """The person, if they may draft for some account; 404 otherwise."""
    user: User = request.user  # type: ignore[assignment]
    if not accounts_with(user, Perm.DRAFT).exists():
        raise Http404("No such page.")
    return user


def get_import_for_user(user: User, pk: uuid.UUID) -> PostImport:
    """The one gate to an import: only its uploader's (404 for anyone else)."""
    post_import = PostImport.objects.filter(pk=pk, created_by=user).defer("rows").first()
    if post_import is None:
        raise Http404("No such import.")
    return post_import


def _with_rows(post_import: PostImport) -> PostImport:
    post_import.refresh_from_db(fields=["rows"])
    return post_import


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def import_start(request: HtmxHttpRequest) -> HttpResponse:
    """Upload a file of posts (GET: the form and the person's recent imports)."""
    user = _importer(request)
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose a CSV or XLSX file to import."
        elif (upload.size or 0) > MAX_BYTES:
            error = f"The file is larger than {MAX_BYTES // 1024 // 1024} MB. Split it into smaller files."
        else:
            try:
                post_import = import_upload(by=user, name=upload.name or "", data=upload.read())
            except FileRefused as exc:
                error = str(exc)
            else:
                messages.success(
                    request,
                    f"{post_import.file_name}: {len(post_import.rows)} posts read. Now choose the columns.",
                )
                return redirect("imports:columns", pk=post_import.pk)
    recent = PostImport.objects.filter(created_by=user).defer("rows", "headers")[:RECENT]
    context = {
        "error": error,
        "recent": recent,
        "fields": FIELDS,
        "max_rows": MAX_ROWS,
        "max_mb": MAX_BYTES // 1024 // 1024,
    }
    return render(request, "imports/start.html", context, status=400 if error else 200)


# The file may be larger than an ordinary form (apps.common.request_limits): up to MAX_BYTES,
# with room for the form around it; the view says why past that.
import_start.request_body_limit = lambda: MAX_BYTES + 64 * 1024  # type: ignore[attr-defined]


def _column_choices(post_import: PostImport, mapping: dict[str, int]) -> list[dict[str, Any]]:
    """Each file column with an example cell and the field it is mapped to."""
    by_index = {index: key for key, index in mapping.items()}
    first = post_import.rows[0] if post_import.rows else []
    return [
        {
            "index": index,
            "header": header,
            "example": first[index] if index < len(first) else "",
            "field": by_index.get(index, ""),
        }
        for index, header in enumerate(post_import.headers)
    ]


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def import_columns(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Map each file column to a field (guessed from the header line), and choose how to import."""
    user = _importer(request)
    post_import = _with_rows(get_import_for_user(user, pk))
    if post_import.status != ImportStatus.UPLOADED:
        return redirect("imports:page", pk=post_import.pk)
    mapping, mode, errors = post_import.mapping, post_import.mode, []
    if request.method == "POST":
        keys = {field.key for field in FIELDS}
        mapping = {}
        for index in range(len(post_import.headers)):
            key = request.POST.get(f"column-{index}", "")
            if key in keys:
                if key in mapping:
                    errors.append(
                        f"“{dict((f.key, f.label) for f in FIELDS)[key]}” is chosen for more than one column."
                    )
                mapping.setdefault(key, index)
        mode = request.POST.get("mode", ImportMode.DRAFT)
        errors += mapping_errors(mapping, post_import.headers)
        if not errors:
            try:
                import_map(post_import=post_import, mapping=mapping, mode=mode)
            except ImportRefused as exc:
                errors.append(str(exc))
            else:
                return redirect("imports:preview", pk=post_import.pk)
    context = {
        "post_import": post_import,
        "columns": _column_choices(post_import, mapping),
        "fields": FIELDS,
        "mode": mode,
        "modes": ImportMode.choices,
        "errors": errors,
    }
    return render(request, "imports/columns.html", context, status=400 if errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def import_preview(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Every row checked with the composer's rules (GET); POST confirms the import of the good ones."""
    user = _importer(request)
    post_import = get_import_for_user(user, pk)
    if post_import.status != ImportStatus.UPLOADED:
        return redirect("imports:page", pk=post_import.pk)
    if not post_import.mapped:
        return redirect("imports:columns", pk=post_import.pk)
    error = ""
    if request.method == "POST":
        try:
            import_confirm(post_import=post_import, by=user)
        except ImportRefused as exc:
            error = str(exc)
        else:
            messages.success(request, "Import started. This page shows how it goes.")
            return redirect("imports:page", pk=post_import.pk)
    preview = rows_check(post_import=_with_rows(post_import), user=user)
    shown = [f for f in FIELDS if f.key in post_import.mapping]
    context = {
        "post_import": post_import,
        "preview": preview,
        "good": len(preview.good),
        "bad": len(preview.bad),
        "drafts": sum(1 for row in preview.good if not row.schedule),
        "fields": shown,
        "rows": [
            {"check": row, "cells": [(f, row.cells.get(f.key, ""), row.error(f.key)) for f in shown]}
            for row in preview.rows
        ],
        "error": error or preview.refusal,
    }
    return render(request, "imports/preview.html", context, status=409 if error else 200)


@never_cache
@require_GET
@login_required
@vary_on_headers("HX-Request")
def import_page(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """The import's progress while it runs (the fragment polls itself), then its summary."""
    user = _importer(request)
    post_import = get_import_for_user(user, pk)
    if post_import.status == ImportStatus.UPLOADED:
        return redirect("imports:preview" if post_import.mapped else "imports:columns", pk=post_import.pk)
    posts = list(Post.objects.visible_to(user).filter(pk__in=post_import.post_ids[:50]).with_account())
    context = {
        "post_import": post_import,
        "posts": posts,
        "more": max(0, len(post_import.post_ids) - len(posts)),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "imports/page.html#progress", context)
    return render(request, "imports/page.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@login_required
def posts_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """The posts list, with its filters, as CSV in the columns the import reads."""
    user: User = request.user  # type: ignore[assignment]
    accounts = list(accounts_with(user).defer(*SECRET_FIELDS))
    posts, _, _ = posts_filtered(Post.objects.visible_to(user), request.GET, accounts)
    posts = posts_for_export(posts).order_by("scheduled_at", "created_at", "pk")
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # so that spreadsheets read it as UTF-8
        for line in export_lines(posts.iterator(chunk_size=500), default_zone=user.time_zone or "UTC"):
            yield writer.writerow(line)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="posts-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
