"""The media library: every video and image an agency uploaded, kept with a name and labels.

A library item owns the stored object. A post's media row (apps.posts.models.PostMedia) that came
from the library names the same object and points back at its item (`PostMedia.library_item`,
related name `uses`): reusing an item in another post stores nothing new, and "where is this
used" is those rows. An object is deleted from storage only once no row names it any more
(apps.media.services.names_unused, asked by every code path that deletes media objects).
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any, ClassVar, Self

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from apps.common.models import SoftDeleteManager, SoftDeleteModel, SoftDeleteQuerySet
from apps.common.pagination import Keyset

LABEL_MAX = 40
LABELS_MAX = 20
# The library's pages: newest first, then by id so that no two items tie.
LIBRARY_ORDER = Keyset(("created_at", "id"), descending=True)


class LibraryKind(models.TextChoices):
    VIDEO = "video", "Video"
    IMAGE = "image", "Image"


def library_upload_to(instance: MediaItem, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in {".mp4", ".mov", ".webm", ".jpg", ".jpeg", ".png", ".webp"}:
        suffix = ""
    return f"library/{instance.kind}/{uuid.uuid4().hex}{suffix}"


class MediaItemQuerySet(SoftDeleteQuerySet):
    def search(self, text: str) -> Self:
        """Items whose name contains `text` (any case)."""
        text = text.strip()
        return self.filter(name__icontains=text) if text else self

    def labelled(self, label: str) -> Self:
        label = label.strip().lower()
        return self.filter(labels__contains=[label]) if label else self

    def of_kind(self, kind: str) -> Self:
        return self.filter(kind=kind) if kind in LibraryKind.values else self


class MediaItemManager(SoftDeleteManager.from_queryset(MediaItemQuerySet)):  # type: ignore[misc]
    pass


class MediaItem(SoftDeleteModel):
    """One uploaded video or image of the agency's library."""

    kind = models.CharField(max_length=8, choices=LibraryKind.choices)
    name = models.CharField(max_length=255)
    labels = ArrayField(models.CharField(max_length=LABEL_MAX), default=list, blank=True)
    file = models.FileField(upload_to=library_upload_to, max_length=255)
    size_bytes = models.PositiveBigIntegerField()
    mime_type = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    duration_seconds = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    frame_rate = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    video_codec = models.CharField(max_length=32, blank=True)
    probed_at = models.DateTimeField(null=True, blank=True)
    # A small JPEG of an image (Pillow); videos have none (no frame grabber on the servers): the
    # library shows a placeholder for them.
    thumbnail = models.FileField(max_length=255, blank=True)

    objects: ClassVar[MediaItemManager] = MediaItemManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=LibraryKind.values), name="media_item_kind_valid"),
            models.CheckConstraint(condition=Q(size_bytes__gt=0), name="media_item_size_positive"),
            models.CheckConstraint(condition=~Q(name=""), name="media_item_has_name"),
        ]
        indexes = [
            models.Index(
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="media_item_list_idx",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(fields=["name"], name="media_item_name_idx", condition=Q(deleted_at__isnull=True)),
            GinIndex(fields=["labels"], name="media_item_labels_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_video(self) -> bool:
        return self.kind == LibraryKind.VIDEO

    def facts(self) -> dict[str, Any]:
        """The probed facts a post's media row copies when it reuses this item."""
        return {
            "size_bytes": self.size_bytes,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "duration_seconds": self.duration_seconds,
            "width": self.width,
            "height": self.height,
            "frame_rate": self.frame_rate,
            "video_codec": self.video_codec,
            "probed_at": self.probed_at,
        }
