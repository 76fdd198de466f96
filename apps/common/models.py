"""The base every Postline model stands on: UUID keys, timestamps, authorship, soft delete."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Self

from django.conf import settings
from django.db import models
from django.utils import timezone


class TimestampedModel(models.Model):
    """UUID primary key and timezone-aware creation/update times."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AuthoredModel(TimestampedModel):
    """A row people act on: who created it and who changed it last."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        abstract = True


class SoftDeleteQuerySet(models.QuerySet):
    def alive(self) -> Self:
        return self.filter(deleted_at__isnull=True)

    def dead(self) -> Self:
        return self.filter(deleted_at__isnull=False)

    def delete(self, *, by: Any = None) -> tuple[int, dict[str, int]]:
        """Soft delete every row in the queryset."""
        count = self.filter(deleted_at__isnull=True).update(deleted_at=timezone.now(), deleted_by=by)
        return count, {self.model._meta.label: count}

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        return super().delete()


class SoftDeleteManager(models.Manager.from_queryset(SoftDeleteQuerySet)):  # type: ignore[misc]
    """The default manager: deleted rows do not exist for ordinary code."""

    def get_queryset(self) -> SoftDeleteQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SoftDeleteModel(AuthoredModel):
    """Deleting marks the row; `all_objects` still sees it and `restore()` brings it back."""

    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects: ClassVar[SoftDeleteManager] = SoftDeleteManager()
    all_objects: ClassVar[models.Manager[Any]] = models.Manager.from_queryset(SoftDeleteQuerySet)()

    class Meta:
        abstract = True
        base_manager_name = "all_objects"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def delete(
        self, using: Any = None, keep_parents: bool = False, *, by: Any = None
    ) -> tuple[int, dict[str, int]]:
        """Soft delete: the row stays, hidden from `objects`."""
        self.deleted_at = timezone.now()
        self.deleted_by = by
        self.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        return 1, {self._meta.label: 1}

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        return super().delete()

    def restore(self, *, by: Any = None) -> None:
        self.deleted_at = None
        self.deleted_by = None
        if by is not None and hasattr(self, "updated_by"):
            self.updated_by = by
        self.save(update_fields=["deleted_at", "deleted_by", "updated_by", "updated_at"])
