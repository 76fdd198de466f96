"""The media library's reads, and its one gate.

The library is the agency's: whoever may write posts (owners, admins, and anyone who may draft
for some account) sees every item, uploads, renames, labels, reuses and deletes. Nobody else has a
use for it, and for them every library page and file answers 404. Where an item is used lists
only the posts the person may see; the others are counted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Func
from django.http import Http404

from apps.accounts.permissions import Perm, accounts_with, granted_account_ids, holds_every_account
from apps.media.models import MediaItem, MediaItemQuerySet
from apps.media.services import uses_model


def may_use_library(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active) and (
        holds_every_account(user) or accounts_with(user, Perm.DRAFT).exists()
    )


def library_items_for(user: Any) -> MediaItemQuerySet:
    """Every item of the library for whoever may use it, none for anyone else."""
    items: MediaItemQuerySet = MediaItem.objects.all() if may_use_library(user) else MediaItem.objects.none()
    return items


def get_item_for_user(user: Any, pk: uuid.UUID | str) -> MediaItem:
    """The one gate to a library item: 404 for another agency's, a deleted one, or anyone who may
    not use the library."""
    item = library_items_for(user).filter(pk=pk).first()
    if item is None:
        raise Http404("No such file in the media library.")
    return item


@dataclass
class Uses:
    """Where an item is used: the posts the person may see (media rows, with their post), and
    how many others."""

    shown: list[Any] = field(default_factory=list)
    hidden: int = 0

    @property
    def count(self) -> int:
        return len(self.shown) + self.hidden


def uses_for(items: list[MediaItem], user: Any) -> dict[uuid.UUID, Uses]:
    """Where each item is used (posts not deleted), in one query."""
    rows = (
        uses_model()
        ._default_manager.filter(
            library_item__in=[item.pk for item in items], post__isnull=False, post__deleted_at__isnull=True
        )
        .select_related("post")
        .only("library_item_id", "post__id", "post__caption", "post__status", "post__account_id")
        .order_by("-post__created_at")
    )
    visible: set[Any] | None = None
    if not holds_every_account(user):
        visible = set(granted_account_ids(user, Perm.VIEW).values_list("content_object_id", flat=True))
    found: dict[uuid.UUID, Uses] = defaultdict(Uses)
    for row in rows:
        uses = found[row.library_item_id]
        if visible is None or row.post.account_id in visible:
            uses.shown.append(row)
        else:
            uses.hidden += 1
    return found


def library_labels() -> list[str]:
    """Every label in use in the library, in alphabetical order (for the filter)."""
    labels = (
        MediaItem.objects.annotate(label=Func("labels", function="unnest", output_field=CharField()))
        .values_list("label", flat=True)
        .distinct()
        .order_by("label")
    )
    return list(labels[:200])
