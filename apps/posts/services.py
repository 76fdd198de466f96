"""Writes on posts."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.posts.models import CANCELLABLE_STATUSES, Post, PostStatus


class PostStateError(Exception):
    """The post's current status does not allow the change; the message says why."""


def post_cancel(*, post: Post, by: Any, request: Any = None) -> Post:
    """Cancel a post no worker has claimed yet.

    Locks the row, so a dispatcher claiming the same post either sees it cancelled or
    makes this call wait and then refuse with the status it found.
    """
    with transaction.atomic():
        locked = Post.objects.select_for_update().get(pk=post.pk)
        if locked.status not in CANCELLABLE_STATUSES:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()} and can no longer be cancelled."
            )
        previous = locked.status
        locked.status = PostStatus.CANCELLED
        locked.updated_by = by
        locked.save(update_fields=["status", "updated_by", "updated_at"])
        audit_record(
            action="post.cancelled",
            actor=by,
            obj=locked,
            request=request,
            changes={"status": [previous, PostStatus.CANCELLED]},
        )
    return locked
