"""Writes and reads on posting queues: slots, the account's zone, the next free slot, and
reordering the queue (swapping the times of its posts)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import needs_approval
from apps.audit.services import audit_record
from apps.posts.models import Post, PostStatus
from apps.posts.queueing import QueueSlotChoice
from apps.posts.services import APPROVAL_LEAD_TIME, PostStateError, post_schedule
from apps.publishing.jobs import job_lock
from apps.queues.models import AccountQueue, QueueSlot
from tenants.models import current_agency

# A post in one of these does not take its slot: it is not going out at that time.
NOT_TAKING = frozenset({PostStatus.DRAFT, PostStatus.CANCELLED})
# Reordering moves these (as the calendar does); a worker's post (publishing) is refused.
MOVABLE = frozenset({PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL})
# How far ahead "Add to queue" looks for a free slot.
HORIZON = dt.timedelta(weeks=52)
# A queued post is never scheduled closer to now than this (the form is submitted, the job is set).
MARGIN = dt.timedelta(minutes=1)


class QueueError(Exception):
    """What a person asked of the queue is not possible; the message says why."""


def queue_zone(account: TikTokAccount) -> zoneinfo.ZoneInfo:
    """The zone the account's slots are read in: its own, else the agency's default."""
    queue = AccountQueue.objects.filter(account=account).first()
    name = queue.time_zone if queue is not None else current_agency().default_time_zone
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def queue_set_time_zone(*, account: TikTokAccount, time_zone: str, by: Any, request: Any = None) -> None:
    """Read the account's slots in `time_zone` from now on (an IANA name, checked by the form).
    The slots keep their local times; posts already scheduled keep their instants."""
    with transaction.atomic():
        previous = queue_zone(account).key
        AccountQueue.objects.update_or_create(
            account=account,
            defaults={"time_zone": time_zone, "updated_by": by},
            create_defaults={"time_zone": time_zone, "created_by": by, "updated_by": by},
        )
        if previous != time_zone:
            audit_record(
                action="queue.time_zone_changed",
                actor=by,
                obj=account,
                request=request,
                changes={"time_zone": [previous, time_zone]},
            )


def slot_add(
    *, account: TikTokAccount, weekday: int, local_time: dt.time, by: Any, request: Any = None
) -> QueueSlot:
    local_time = local_time.replace(second=0, microsecond=0)
    slot = QueueSlot(account=account, weekday=weekday, local_time=local_time, created_by=by, updated_by=by)
    try:
        with transaction.atomic():
            slot.save()
            audit_record(
                action="queue.slot_added",
                actor=by,
                obj=account,
                request=request,
                changes={"slot": str(slot), "time_zone": queue_zone(account).key},
            )
    except IntegrityError:
        raise QueueError(f"{account} already has a slot on {slot}.") from None
    return slot


def slot_remove(*, slot: QueueSlot, by: Any, request: Any = None) -> None:
    """Remove a slot; posts scheduled at its times stay scheduled."""
    with transaction.atomic():
        slot.delete()
        audit_record(
            action="queue.slot_removed",
            actor=by,
            obj=slot.account,
            request=request,
            changes={"slot": str(slot)},
        )


def slot_instant(day: dt.date, local_time: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant of `local_time` on `day` in `zone`. A time the clocks skip (02:30 on the
    morning they go forward) is the instant an hour later on the clock; a time they pass twice
    is its first passing."""
    local = dt.datetime.combine(day, local_time, tzinfo=zone)
    return local.astimezone(dt.UTC)


@dataclass(frozen=True)
class Upcoming:
    """One coming slot of a queue, with the post taking it (None: free)."""

    at: dt.datetime
    slot: QueueSlot
    post: Post | None


def slot_instants(
    slots: list[QueueSlot], zone: zoneinfo.ZoneInfo, *, after: dt.datetime, until: dt.datetime
) -> Iterator[tuple[dt.datetime, QueueSlot]]:
    """Every instant of `slots` strictly after `after` up to `until`, in order."""
    by_weekday: dict[int, list[QueueSlot]] = {}
    for slot in sorted(slots, key=lambda s: s.local_time):
        by_weekday.setdefault(slot.weekday, []).append(slot)
    if not by_weekday:
        return
    day = after.astimezone(zone).date()
    last = until.astimezone(zone).date()
    while day <= last:
        for slot in by_weekday.get(day.weekday(), []):
            at = slot_instant(day, slot.local_time, zone)
            if after < at <= until:
                yield at, slot
        day += dt.timedelta(days=1)


def _taking(account: TikTokAccount, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, Post]:
    posts = (
        Post.objects.filter(account=account, scheduled_at__gt=start, scheduled_at__lte=end)
        .exclude(status__in=NOT_TAKING)
        .order_by("scheduled_at", "created_at")
    )
    taken: dict[dt.datetime, Post] = {}
    for post in posts:
        if post.scheduled_at is not None:
            taken.setdefault(post.scheduled_at, post)
    return taken


def queue_upcoming(*, account: TikTokAccount, now: dt.datetime, weeks: int = 2) -> list[Upcoming]:
    """The account's slots in the coming `weeks`, each with the post that takes it (two queries)."""
    slots = list(QueueSlot.objects.filter(account=account))
    if not slots:
        return []
    until = now + dt.timedelta(weeks=weeks)
    taken = _taking(account, now, until)
    zone = queue_zone(account)
    return [
        Upcoming(at, slot, taken.get(at)) for at, slot in slot_instants(slots, zone, after=now, until=until)
    ]


def queue_next_free(*, account: TikTokAccount, after: dt.datetime) -> dt.datetime | None:
    """The account's first slot after `after` that no post takes (None: no slot free within a year)."""
    slots = list(QueueSlot.objects.filter(account=account))
    if not slots:
        return None
    until = after + HORIZON
    taken = _taking(account, after, until)
    for at, _slot in slot_instants(slots, queue_zone(account), after=after, until=until):
        if at not in taken:
            return at
    return None


@contextmanager
def queue_reserve_next(*, account: TikTokAccount, by: Any) -> Iterator[QueueSlotChoice | None]:
    """Hold the account's queue (a transaction lock, so that two people adding to it at once
    get two slots) and yield its next free slot, never in the past and, for someone whose posts
    wait for approval, at least the approval lead time ahead. The caller schedules the post
    inside the `with`."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"queue:{account.pk}"])
        lead = APPROVAL_LEAD_TIME + MARGIN if by is not None and needs_approval(by, account) else MARGIN
        at = queue_next_free(account=account, after=timezone.now() + lead)
        yield QueueSlotChoice(at=at, time_zone=queue_zone(account).key) if at is not None else None


def queue_move(
    *, account: TikTokAccount, post: Post, to: dt.datetime, by: Any, request: Any = None
) -> Post | None:
    """Move `post` to the slot at `to`; the post taking that slot, if any, takes `post`'s time
    (a swap: the set of taken slots stays the same). Returns the post swapped with (or None).

    One transaction: both posts are locked (job row, then post, in one order) and rescheduled
    with the calendar's rules (post_schedule: nothing in the past, nothing a worker claimed, an
    approved post moved by someone whose posts wait for approval goes back for approval)."""
    zone = queue_zone(account)
    slots = list(QueueSlot.objects.filter(account=account))
    local = to.astimezone(zone)
    if not any(
        s.weekday == local.weekday() and slot_instant(local.date(), s.local_time, zone) == to for s in slots
    ):
        raise QueueError("That time is not one of the queue's slots any more. Reload the queue.")
    with transaction.atomic():
        other = (
            Post.objects.filter(account=account, scheduled_at=to)
            .exclude(status__in=NOT_TAKING)
            .exclude(pk=post.pk)
            .order_by("created_at")
            .first()
        )
        ids = sorted([p.pk for p in (post, other) if p is not None])
        for pk in ids:
            job_lock(post_id=pk)
        locked = {p.pk: p for p in Post.objects.select_for_update().filter(pk__in=ids)}
        mine = locked[post.pk]
        if mine.account_id != account.pk or mine.scheduled_at is None:
            raise QueueError("This post is not in this queue.")
        for p in locked.values():
            if p.status not in MOVABLE:
                raise PostStateError(
                    f"“{p}” is {p.get_status_display().lower()}: only scheduled posts and posts "
                    "waiting for approval move in the queue."
                )
        source = mine.scheduled_at
        if source == to:
            return None
        if source < timezone.now():
            raise PostStateError(f"“{mine}” is due already and can no longer be moved.")
        post_schedule(
            post=mine, scheduled_at=to, time_zone=zone.key, by=by, request=request, only_from=MOVABLE
        )
        if other is not None:
            post_schedule(
                post=locked[other.pk],
                scheduled_at=source,
                time_zone=zone.key,
                by=by,
                request=request,
                only_from=MOVABLE,
            )
        audit_record(
            action="queue.reordered",
            actor=by,
            obj=account,
            request=request,
            changes={
                "post": str(mine.pk),
                "scheduled_at": [source.isoformat(), to.isoformat()],
                "swapped_with": str(other.pk) if other is not None else None,
            },
        )
    return locked[other.pk] if other is not None else None
