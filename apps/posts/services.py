"""Writes on posts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.audit.services import audit_record
from apps.posts.models import (
    CANCELLABLE_STATUSES,
    SCHEDULABLE_STATUSES,
    AttemptKind,
    AttemptOutcome,
    Post,
    PostStatus,
    PublishAttempt,
)


class PostStateError(Exception):
    """The post's current status does not allow the change; the message says why."""


def _locked(post: Post) -> Post:
    """Lock the post's job row, then the post (the dispatcher's order), and return the post."""
    from apps.publishing.jobs import job_lock

    job_lock(post_id=post.pk)
    return Post.objects.select_for_update().get(pk=post.pk)


def post_schedule(
    *, post: Post, scheduled_at: dt.datetime, time_zone: str, by: Any, request: Any = None
) -> Post:
    """Schedule (or reschedule) a post. Refused in the past, and once a worker has claimed it."""
    from apps.publishing.jobs import job_set
    from apps.publishing.models import JobKind

    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    if scheduled_at < timezone.now() - dt.timedelta(seconds=5):
        raise PostStateError("That time has already passed. Choose a time in the future.")
    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in SCHEDULABLE_STATUSES:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()} and can no longer be rescheduled."
            )
        if not locked.privacy_level:
            raise PostStateError("Choose who can see the post before scheduling it.")
        previous = (locked.status, locked.scheduled_at.isoformat() if locked.scheduled_at else None)
        locked.status = PostStatus.SCHEDULED
        locked.scheduled_at = scheduled_at
        locked.schedule_time_zone = time_zone
        locked.updated_by = by
        locked.save(
            update_fields=["status", "scheduled_at", "schedule_time_zone", "updated_by", "updated_at"]
        )
        job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=scheduled_at)
        audit_record(
            action="post.scheduled" if previous[0] != PostStatus.SCHEDULED else "post.rescheduled",
            actor=by,
            obj=locked,
            request=request,
            changes={
                "status": [previous[0], PostStatus.SCHEDULED],
                "scheduled_at": [previous[1], scheduled_at.isoformat()],
            },
        )
    return locked


def post_cancel(*, post: Post, by: Any, request: Any = None) -> Post:
    """Cancel a post no worker has claimed yet.

    Locks the job row and then the post, as the dispatcher does: a dispatcher claiming the
    same post either finds it cancelled or makes this call wait and then refuse.
    """
    from apps.publishing.jobs import job_delete

    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in CANCELLABLE_STATUSES:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()} and can no longer be cancelled."
            )
        previous = locked.status
        locked.status = PostStatus.CANCELLED
        locked.updated_by = by
        locked.save(update_fields=["status", "updated_by", "updated_at"])
        job_delete(post_id=locked.pk)
        audit_record(
            action="post.cancelled",
            actor=by,
            obj=locked,
            request=request,
            changes={"status": [previous, PostStatus.CANCELLED]},
        )
    return locked


def post_mark_published(*, post: Post, published_post_id: str, by: Any, request: Any = None) -> Post:
    """A person checked TikTok: the post did go out. Only for posts needing attention."""
    from apps.publishing.jobs import job_delete

    published_post_id = published_post_id.strip()
    if published_post_id and not (len(published_post_id) == 19 and published_post_id.isdigit()):
        raise PostStateError("A TikTok post id is 19 digits, as in the post's link.")
    with transaction.atomic():
        locked = _locked(post)
        if locked.status != PostStatus.NEEDS_ATTENTION:
            raise PostStateError("Only posts that need attention can be marked as published.")
        locked.status = PostStatus.PUBLISHED
        locked.published_post_id = published_post_id
        locked.published_at = timezone.now()
        locked.publish_id = locked.publish_id or "marked-by-hand"
        locked.updated_by = by
        locked.save()
        job_delete(post_id=locked.pk)
        audit_record(
            action="post.attention_resolved",
            actor=by,
            obj=locked,
            request=request,
            changes={"resolution": "marked_published", "published_post_id": published_post_id},
        )
    return locked


def post_retry(*, post: Post, by: Any, request: Any = None) -> Post:
    """A person decides to publish again (needs attention or failed): a new attempt, now."""
    from apps.publishing.jobs import job_set
    from apps.publishing.models import JobKind

    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in (PostStatus.NEEDS_ATTENTION, PostStatus.FAILED):
            raise PostStateError("Only failed posts and posts that need attention can be retried.")
        previous = locked.status
        now = timezone.now()
        locked.status = PostStatus.SCHEDULED
        locked.scheduled_at = now
        locked.schedule_time_zone = locked.schedule_time_zone or "UTC"
        locked.publish_id = ""
        locked.upload_url = ""
        locked.last_error_code = ""
        locked.last_error_message = ""
        locked.updated_by = by
        locked.save()
        job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=now)
        audit_record(
            action="post.attention_resolved" if previous == PostStatus.NEEDS_ATTENTION else "post.retried",
            actor=by,
            obj=locked,
            request=request,
            changes={"resolution": "retried", "status": [previous, PostStatus.SCHEDULED]},
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
    _apply_publish_event(post, event, content)
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


def _apply_publish_event(post: Post, event: str, content: dict[str, Any]) -> None:
    """What a publish webhook tells us, applied the same way the status checks would."""
    from apps.publishing.jobs import job_delete
    from apps.publishing.models import JobKind

    with transaction.atomic():
        locked = Post.all_objects.select_for_update().get(pk=post.pk)
        if event in ("post.publish.complete", "post.publish.inbox_delivered") and locked.status in (
            PostStatus.PROCESSING,
            PostStatus.PUBLISHING,
        ):
            locked.status = PostStatus.PUBLISHED
            locked.published_at = timezone.now()
            locked.save(update_fields=["status", "published_at", "updated_at"])
            audit_record(action="post.published", obj=locked, changes={"source": event})
        elif event == "post.publish.failed" and locked.status in (
            PostStatus.PROCESSING,
            PostStatus.PUBLISHING,
        ):
            from apps.tiktok.errors import human_message

            reason = str(content.get("reason", "unknown"))
            locked.status = PostStatus.FAILED
            locked.last_error_code = reason[:100]
            locked.last_error_message = f"TikTok could not publish the video: {human_message(reason)}"
            locked.save(update_fields=["status", "last_error_code", "last_error_message", "updated_at"])
            job_delete(post_id=locked.pk)
            audit_record(action="post.failed", obj=locked, changes={"source": event, "reason": reason})
        elif event == "post.publish.publicly_available":
            post_id = str(content.get("post_id", ""))
            if len(post_id) == 19 and post_id.isdigit() and not locked.published_post_id:
                locked.published_post_id = post_id
                if locked.status != PostStatus.PUBLISHED:
                    locked.status = PostStatus.PUBLISHED
                    locked.published_at = locked.published_at or timezone.now()
                locked.save(update_fields=["published_post_id", "status", "published_at", "updated_at"])
                job_delete(post_id=locked.pk, kind=JobKind.POLL)
