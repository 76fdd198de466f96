"""The media library's writes: adding an upload (within the agency plan's storage), naming and
labelling it, deleting it (refused while a post uses it), and its thumbnail.

The checks of what TikTok takes live with posts (apps.posts.media, apps.posts.photos): an upload
is checked there and then added here (apps.posts.services.media_upload and photo_upload), so the
composer's uploads, the API's and the library page's are the same. The posts floor names the
library (PostMedia.library_item, related name `uses`); this floor reads those rows through that
relation, never by importing posts.
"""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass
from typing import IO, Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from apps.audit.services import audit_record
from apps.media.models import LABEL_MAX, LABELS_MAX, LibraryKind, MediaItem
from apps.media.storage import RangeReader, media_storage
from tenants.db import connection
from tenants.models import current_agency

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 320


class StorageFull(Exception):
    """The upload would take the agency past its plan's storage; the message says so."""


class MediaInUse(Exception):
    """The item is used by posts (`uses`: the posts' media rows), so it is kept."""

    def __init__(self, uses: list[Any]) -> None:
        super().__init__("This file is used by posts.")
        self.uses = uses


class LibraryInvalid(Exception):
    """A name or label that cannot be kept (field → message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


def uses_model() -> Any:
    """The posts' media model, by the relation that names the library."""
    return MediaItem._meta.get_field("uses").related_model


# --- Storage used, and the plan's limit ---


@dataclass(frozen=True)
class StorageUse:
    used: int
    limit: int | None

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(100, round(self.used * 100 / self.limit))


def storage_limit() -> int | None:
    """The agency's plan's storage (bytes), None when the plan has no limit."""
    return settings.MEDIA_STORAGE_LIMITS.get(current_agency().plan)


def storage_use() -> StorageUse:
    """What the agency's library holds (items not deleted), against its plan's limit."""
    used = MediaItem.objects.aggregate(total=Sum("size_bytes"))["total"] or 0
    return StorageUse(used=int(used), limit=storage_limit())


def _quota_lock() -> None:
    """One upload at a time decides whether the agency's storage has room (until commit)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"media-quota:{connection.schema_name}"]
        )


def storage_full_message(*, size: int | None, use: StorageUse) -> str:
    """Why an upload past the plan's storage was refused; `size` None: it was stopped before its
    end (larger than what is left)."""
    what = f"this file is {filesizeformat(size)}" if size is not None else "this file is larger than that"
    return (
        f"Not uploaded: {what}, and the agency's media library has "
        f"{filesizeformat(use.left or 0)} left of its plan's {filesizeformat(use.limit or 0)} "
        f"({filesizeformat(use.used)} used). Delete files you no longer need from the media "
        "library, or ask your owner about a larger plan."
    )


# --- Adding, editing, deleting ---


def labels_clean(text: str | list[str]) -> list[str]:
    """Labels as kept: lower case, trimmed, without repeats, in the order given ("a, b" or a list)."""
    raw = text.split(",") if isinstance(text, str) else text
    labels: list[str] = []
    for label in raw:
        label = " ".join(label.split()).lower()
        if label and label not in labels:
            labels.append(label)
    return labels


def _labels_errors(labels: list[str]) -> dict[str, str]:
    if len(labels) > LABELS_MAX:
        return {"labels": f"Give at most {LABELS_MAX} labels."}
    if any(len(label) > LABEL_MAX for label in labels):
        return {"labels": f"A label has at most {LABEL_MAX} characters."}
    return {}


def library_item_add(
    *, kind: str, name: str, file_name: str, facts: dict[str, Any], by: Any, request: Any = None
) -> MediaItem:
    """Add a checked upload, already stored as `file_name`, to the library (in the caller's
    transaction). Raises StorageFull, before anything is written, when it would take the agency
    past its plan's storage: the caller deletes the stored object."""
    size = int(facts["size_bytes"])
    _quota_lock()
    use = storage_use()
    if use.limit is not None and use.used + size > use.limit:
        raise StorageFull(storage_full_message(size=size, use=use))
    item = MediaItem(
        kind=kind, name=(name.strip() or "Untitled")[:255], created_by=by, updated_by=by, **facts
    )
    item.file.name = file_name
    item.save()
    audit_record(
        action="media.added_to_library",
        actor=by,
        obj=item,
        request=request,
        changes={"name": item.name, "kind": kind, "size_bytes": size},
    )
    if kind == LibraryKind.IMAGE:
        transaction.on_commit(lambda: thumbnail_make(item=item))
    return item


def library_item_edit(
    *, item: MediaItem, name: str, labels: list[str], by: Any, request: Any = None
) -> MediaItem:
    """Rename and relabel an item."""
    name = name.strip()
    errors = {"name": "Give the file a name."} if not name else {}
    if len(name) > 255:
        errors["name"] = "A name has at most 255 characters."
    labels = labels_clean(labels)
    errors.update(_labels_errors(labels))
    if errors:
        raise LibraryInvalid(errors)
    changes: dict[str, Any] = {}
    with transaction.atomic():
        item = MediaItem.objects.select_for_update().get(pk=item.pk)
        if item.name != name:
            changes["name"] = [item.name, name]
        if item.labels != labels:
            changes["labels"] = [item.labels, labels]
        if changes:
            item.name, item.labels, item.updated_by = name, labels, by
            item.save(update_fields=["name", "labels", "updated_by", "updated_at"])
            audit_record(action="media.edited", actor=by, obj=item, request=request, changes=changes)
    return item


def item_uses(item: MediaItem) -> list[Any]:
    """The media rows of the posts (not deleted) that use `item`, newest post first."""
    return list(
        uses_model()
        ._default_manager.filter(library_item=item, post__isnull=False, post__deleted_at__isnull=True)
        .select_related("post", "post__account")
        .order_by("-post__created_at")
    )


def library_item_delete(*, item: MediaItem, by: Any, request: Any = None) -> None:
    """Delete an item no post uses, and its stored objects once no row names them (a deleted post
    that may be restored still does: retention removes it with that post). Raises MediaInUse,
    with the posts that use it."""
    rows = uses_model()
    with transaction.atomic():
        item = MediaItem.objects.select_for_update().get(pk=item.pk)
        uses = item_uses(item)
        if uses:
            raise MediaInUse(uses)
        # Uploads not yet in a post (a composer left open) go with it.
        rows._default_manager.filter(library_item=item, post__isnull=True).delete(by=by)
        MediaItem.objects.filter(pk=item.pk).delete(by=by)
        audit_record(
            action="media.deleted",
            actor=by,
            obj=item,
            request=request,
            changes={"name": item.name, "size_bytes": item.size_bytes},
        )
        # A deleted post may be restored with its video: its (live) row keeps the object. A video
        # replaced in a post (its row deleted) does not: the posts' own code drops such bytes.
        still_named = rows._default_manager.filter(library_item=item, post__isnull=False).exists()
        names = [str(item.thumbnail.name)] if item.thumbnail else []
        if not still_named:
            names.append(str(item.file.name))
        # The rows keep their names for the audit trail; the bytes go.
        transaction.on_commit(lambda: _objects_delete(names))


def _objects_delete(names: list[str]) -> None:
    storage = media_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # the row is deleted: an object left behind is never served
            logger.exception("Could not delete media object %s", name)


def names_unused(names: list[str]) -> list[str]:
    """Those of `names` that no library item (deleted or not) names: a post's media row may
    delete them from storage."""
    named = set(MediaItem.all_objects.filter(file__in=names).values_list("file", flat=True))
    return [name for name in names if name not in named]


# --- Thumbnails ---


def thumbnail_make(*, item: MediaItem) -> None:
    """A JPEG of at most THUMBNAIL_PX a side of an image item (Pillow); logged when it fails."""
    storage = media_storage()
    try:
        reader = cast(IO[bytes], RangeReader(storage, str(item.file.name), item.size_bytes))
        with Image.open(reader) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        logger.warning("Could not make a thumbnail of %s", item.pk, exc_info=True)
        return
    name = f"library/thumbs/{uuid.uuid4().hex}.jpg"
    writer = storage.open_writer(name, content_type="image/jpeg")
    writer.write(out.getvalue())
    writer.complete()
    MediaItem.objects.filter(pk=item.pk).update(thumbnail=name)
