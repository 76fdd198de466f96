"""Which caption templates and hashtag groups a person may see and use: the agency's, and
those of the clients whose accounts they may draft for."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.permissions import Perm, accounts_with
from apps.captions.models import CaptionSnippet


def client_labels_for(user: Any) -> list[str]:
    """The clients of the accounts `user` may draft for, sorted (no empty label)."""
    labels = accounts_with(user, Perm.DRAFT).exclude(client_label="").values_list("client_label", flat=True)
    return sorted(set(labels))


def may_use_snippets(user: Any) -> bool:
    return accounts_with(user, Perm.DRAFT).exists()


def snippets_for(user: Any) -> QuerySet[CaptionSnippet]:
    if not may_use_snippets(user):
        return CaptionSnippet.objects.none()
    return CaptionSnippet.objects.filter(Q(client_label="") | Q(client_label__in=client_labels_for(user)))


def get_snippet_for_user(user: Any, pk: uuid.UUID) -> CaptionSnippet:
    """The one gate to a single snippet: 404 unless `user` may use it."""
    snippet = snippets_for(user).filter(pk=pk).first()
    if snippet is None:
        raise Http404("No such template.")
    return snippet
