"""The media library's reads, and its one gate.

The library is for whoever may write posts (owners, admins, and anyone who may draft for some
account); for anyone else every library page and file answers 404. Owners and admins see every
item. Everyone else sees what they uploaded and what posts they may see use: a client's
unreleased video is no more visible through the library than through its post. Where an item is
used lists only the posts the person may see; the others are counted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Func, Q
from django.http import Http404

from apps.accounts.permissions import Perm, accounts_with, granted_account_ids, holds_every_account
from apps.media.models import MediaItem, MediaItemQuerySet
from apps.media.services import uses_model


def may_use_library(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active) and (
        holds_every_account(user) or accounts_with(user, Perm.DRAFT).exists()
    )


def library_items_for(user: Any) -> MediaItemQuerySet:
    """The items `user` may see and use (see the module's docstring)."""
    items: MediaItemQuerySet = MediaItem.objects.all()
    if not may_use_library(user):
        return items.none()
    if holds_every_account(user):
        return items
    used_where_visible = (
        uses_model()
        ._default_manager.filter(
            post__isnull=False,
            post__deleted_at__isnull=True,
            post__account_id__in=granted_account_ids(user, Perm.VIEW),
            library_item__isnull=False,
        )
        .values("library_item_id")
    )
    return items.filter(Q(created_by=user) | Q(pk__in=used_where_visible))


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


def library_labels(user: Any) -> list[str]:
    """Every label on the items `user` may see, in alphabetical order (for the filter)."""
    labels = (
        library_items_for(user)
        .annotate(label=Func("labels", function="unnest", output_field=CharField()))
        .values_list("label", flat=True)
        .distinct()
        .order_by("label")
    )
    return list(labels[:200])
