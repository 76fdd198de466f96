"""Caption templates and hashtag groups: the list with its form to add one, editing, deleting.
Open to everyone who may draft posts for some account; each sees the agency's and their clients'."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.captions.forms import SnippetForm
from apps.captions.models import CaptionSnippet
from apps.captions.selectors import client_labels_for, get_snippet_for_user, may_use_snippets, snippets_for
from apps.captions.services import SnippetError, snippet_delete, snippet_save
from apps.common.http import HtmxHttpRequest
from apps.users.models import User


def _user(request: HtmxHttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not may_use_snippets(user):
        raise Http404("No such page.")
    return user


def _save(
    request: HtmxHttpRequest, form: SnippetForm, snippet: CaptionSnippet | None
) -> CaptionSnippet | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return snippet_save(
            snippet=snippet,
            kind=snippet.kind if snippet is not None else data["kind"],
            name=data["name"],
            text=data["text"],
            client_label=data["client_label"],
            by=request.user,
            request=request,
        )
    except SnippetError as exc:
        for field, message in exc.errors.items():
            form.add_error(field, message)
        return None


@require_http_methods(["GET", "POST"])
@login_required
def snippet_list(request: HtmxHttpRequest) -> HttpResponse:
    user = _user(request)
    labels = client_labels_for(user)
    form = SnippetForm(request.POST or None, client_labels=labels)
    if request.method == "POST" and (saved := _save(request, form, None)) is not None:
        messages.success(request, f"Saved {saved.get_kind_display().lower()} “{saved}”.")
        return redirect("captions:list")
    return render(
        request, "captions/list.html", {"snippets": list(snippets_for(user)), "form": form, "snippet": None}
    )


@require_http_methods(["GET", "POST"])
@login_required
def snippet_edit(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    user = _user(request)
    snippet = get_snippet_for_user(user, pk)
    initial = {
        "kind": snippet.kind,
        "name": snippet.name,
        "text": snippet.text,
        "client_label": snippet.client_label,
    }
    form = SnippetForm(
        request.POST or None, initial=initial, client_labels=client_labels_for(user), editing=True
    )
    if request.method == "POST" and (saved := _save(request, form, snippet)) is not None:
        messages.success(request, f"Saved {saved.get_kind_display().lower()} “{saved}”.")
        return redirect("captions:list")
    return render(request, "captions/edit.html", {"snippet": snippet, "form": form})


@require_POST
@login_required
def snippet_delete_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    user = _user(request)
    snippet = get_snippet_for_user(user, pk)
    snippet_delete(snippet=snippet, by=user, request=request)
    messages.success(request, f"Deleted {snippet.get_kind_display().lower()} “{snippet}”.")
    return redirect("captions:list")
