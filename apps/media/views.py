"""The media library's pages: the list (search, label and kind filters, pages by keyset, the
storage used), an item's page (rename, labels, where it is used, delete) and its file and
thumbnail. Uploading to it is apps.posts.views.library_upload (the checks of what TikTok takes
live with posts). Every page and file goes through apps.media.selectors.get_item_for_user."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.common.http import HtmxHttpRequest
from apps.common.pagination import keyset_page
from apps.media.models import LIBRARY_ORDER, LibraryKind, MediaItem
from apps.media.selectors import (
    get_item_for_user,
    library_items_for,
    library_labels,
    may_use_library,
    uses_for,
)
from apps.media.services import (
    LibraryInvalid,
    MediaInUse,
    labels_clean,
    library_item_delete,
    library_item_edit,
    storage_use,
)
from apps.media.storage import media_storage
from apps.users.models import User

PAGE_SIZE = 24


def _user(request: HtmxHttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not may_use_library(user):
        raise Http404("No such page.")
    return user


@require_GET
@login_required
@vary_on_headers("HX-Request")
def library(request: HtmxHttpRequest) -> HttpResponse:
    user = _user(request)
    query = request.GET.get("q", "").strip()[:100]
    label = request.GET.get("label", "").strip()[:40]
    kind = request.GET.get("kind", "")
    items = library_items_for(user).search(query).labelled(label).of_kind(kind)
    page = keyset_page(items, LIBRARY_ORDER, request.GET, size=PAGE_SIZE)
    uses = uses_for(page.rows, user)
    context = {
        "page": page,
        "rows": [(item, uses.get(item.pk)) for item in page.rows],
        "query": query,
        "label": label,
        "kind": kind if kind in LibraryKind.values else "",
        "kinds": LibraryKind.choices,
        "labels": library_labels(user),
        "storage": storage_use(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "media/library.html#results", context)
    return render(request, "media/library.html", context)


def _item_context(item: MediaItem, user: User, **extra: object) -> dict[str, object]:
    return {"item": item, "uses": uses_for([item], user).get(item.pk), **extra}


@require_http_methods(["GET", "POST"])
@login_required
def item_detail(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """An item's page: GET shows it; POST renames and relabels it."""
    user = _user(request)
    item = get_item_for_user(user, pk)
    if request.method == "GET":
        return render(request, "media/item.html", _item_context(item, user))
    name, labels = request.POST.get("name", ""), request.POST.get("labels", "")
    try:
        library_item_edit(item=item, name=name, labels=labels_clean(labels), by=user, request=request)
    except LibraryInvalid as exc:
        form = {"name": name, "labels": labels}
        return render(request, "media/item.html", _item_context(item, user, errors=exc.errors, form=form))
    messages.success(request, "Saved.")
    return redirect("media:item", pk=item.pk)


@require_POST
@login_required
def item_delete(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Delete an item no post uses; one in use is kept, and its page says where."""
    user = _user(request)
    item = get_item_for_user(user, pk)
    try:
        library_item_delete(item=item, by=user, request=request)
    except MediaInUse:
        context = _item_context(item, user, delete_refused=True)
        return render(request, "media/item.html", context, status=409)
    messages.success(request, f"{item.name} is deleted from the media library.")
    return redirect("media:library")


def _serve(name: str, content_type: str) -> HttpResponseBase:
    """A stored object for the browser: a short-lived presigned URL, or streamed from disk."""
    storage = media_storage()
    url = storage.browser_url(name, content_type=content_type)
    if url is not None:
        if not storage.exists(name):
            raise Http404("The file is missing.")
        response: HttpResponse = redirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    try:
        handle = storage.open(name, "rb")  # type: ignore[attr-defined]
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    streamed = FileResponse(handle, content_type=content_type)
    streamed["Cache-Control"] = "private, max-age=3600"
    return streamed


@require_GET
@login_required
def item_file(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponseBase:
    item = get_item_for_user(_user(request), pk)
    return _serve(str(item.file.name), item.mime_type)


@require_GET
@login_required
def item_thumbnail(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponseBase:
    item = get_item_for_user(_user(request), pk)
    if not item.thumbnail:
        raise Http404("No thumbnail.")
    return _serve(str(item.thumbnail.name), "image/jpeg")
