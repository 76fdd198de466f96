"""Writes on posts."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.audit.services import audit_record
from apps.posts.models import (
    CANCELLABLE_STATUSES,
    AttemptKind,
    AttemptOutcome,
    Post,
    PostStatus,
    PublishAttempt,
)


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


def post_record_webhook(*, open_id: str, event: str, content: dict[str, Any]) -> PublishAttempt | None:
    """Record a publish event from TikTok on the post it concerns (by publish_id).

    The publishing pipeline acts on the status; here the event is kept in the post's
    attempt history so nobody loses it.
    """
    publish_id = str(content.get("publish_id", ""))
    post = (
        Post.all_objects.filter(publish_id=publish_id, account__open_id=open_id).first()
        if publish_id
        else None
    )
    if post is None:
        return None
    now = timezone.now()
    failed = event == "post.publish.failed"
    return PublishAttempt.objects.create(
        post=post,
        attempt_number=max(1, post.attempts.aggregate(n=Max("attempt_number"))["n"] or 1),
        kind=AttemptKind.WEBHOOK,
        started_at=now,
        finished_at=now,
        outcome=AttemptOutcome.FINAL if failed else AttemptOutcome.OK,
        error_code=str(content.get("reason", ""))[:100] if failed else "",
        error_message=event,
    )
