"""Writes on caption templates and hashtag groups, each audited."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.captions.models import CaptionSnippet, SnippetKind


class SnippetError(Exception):
    """The snippet cannot be saved as given; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors.values()))


def hashtags_normalized(text: str) -> str:
    """ "sourdough, #bread  baking" → "#sourdough #bread #baking"."""
    words = [w.lstrip("#") for w in re.split(r"[\s,]+", text) if w.strip("#")]
    return " ".join(f"#{w}" for w in dict.fromkeys(words))


def _text(kind: str, text: str) -> str:
    text = text.replace("\r\n", "\n")
    return hashtags_normalized(text) if kind == SnippetKind.HASHTAGS else text.strip("\n")


def snippet_save(
    *,
    snippet: CaptionSnippet | None,
    kind: str,
    name: str,
    text: str,
    client_label: str,
    by: Any,
    request: Any = None,
) -> CaptionSnippet:
    """Create (`snippet=None`) or change a template or hashtag group."""
    text = _text(kind, text)
    if not text:
        raise SnippetError({"text": "Write what the composer inserts."})
    created = snippet is None
    if snippet is None:
        snippet = CaptionSnippet(kind=kind, created_by=by)
    before = {"name": snippet.name, "text": snippet.text, "client_label": snippet.client_label}
    snippet.name, snippet.text, snippet.client_label, snippet.updated_by = (
        name.strip(),
        text,
        client_label,
        by,
    )
    try:
        with transaction.atomic():
            snippet.save()
            after = {"name": snippet.name, "text": snippet.text, "client_label": snippet.client_label}
            audit_record(
                action="caption_snippet.created" if created else "caption_snippet.changed",
                actor=by,
                obj=snippet,
                request=request,
                changes={"kind": kind, **after}
                if created
                else {key: [before[key], value] for key, value in after.items() if before[key] != value},
            )
    except IntegrityError:
        raise SnippetError(
            {"name": f"There is already a {snippet.get_kind_display().lower()} named “{snippet.name}” here."}
        ) from None
    return snippet


def snippet_delete(*, snippet: CaptionSnippet, by: Any, request: Any = None) -> None:
    with transaction.atomic():
        audit_record(
            action="caption_snippet.deleted",
            actor=by,
            obj=snippet,
            request=request,
            changes={"kind": snippet.kind, "name": snippet.name, "client_label": snippet.client_label},
        )
        snippet.delete()
