"""Writing events down: who hears of each, on which channel, from when (no sending here).

Everything runs in the caller's transaction, so an event and its rows commit with the change
they tell of. Recipients come from the permission gate: only people who may see the event's
object now, never the person who caused it, and never anyone of another agency (each agency's
users live in its own schema).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse as _reverse
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ADMIN_ROLES, Perm, user_may, users_with
from apps.audit.models import AuditExport
from apps.comments.models import Comment
from apps.comments.selectors import users_to_tell_of_client_comment
from apps.common.outbox import Emitted
from apps.exports.models import AgencyExport
from apps.notifications.models import (
    COMMENT_KINDS,
    OFF_BY_DEFAULT,
    Channel,
    ChatDelivery,
    ChatWebhook,
    Event,
    Kind,
    Notification,
    PersonSettings,
    Preference,
    Status,
)
from apps.posts.models import Post
from apps.team.models import Invitation
from apps.users.models import Role, User


def reverse(name: str, **kwargs: Any) -> str:
    """A path on the agency's site, whichever site (the root domain's webhooks) or process asks."""
    return _reverse(name, urlconf=settings.ROOT_URLCONF, **kwargs)


@dataclass
class Fanout:
    """What the worker must send once the transaction commits."""

    email_user_ids: set[uuid.UUID] = field(default_factory=set)
    chat_delivery_ids: list[uuid.UUID] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.email_user_ids or self.chat_delivery_ids)


# --- Recipients ---


def _author(post: Post) -> list[User]:
    return [post.created_by] if post.created_by is not None else []


def recipients(kind: str, obj: Any, actor: Any) -> list[User]:
    """Who hears of `kind` about `obj`: filtered through the permission gate, the actor left out."""
    people: list[User]
    account: TikTokAccount | None = None
    if isinstance(obj, Post):
        account = obj.account
        if kind in (Kind.POST_FAILED, Kind.POST_NEEDS_ATTENTION):
            people = _author(obj) + list(users_with(Perm.MANAGE, account))
        elif kind == Kind.APPROVAL_REQUESTED:
            # The account's reviewers (client reviewers included), never whoever wrote it.
            people = [u for u in users_with(Perm.APPROVE, account) if u.pk != obj.created_by_id]
        else:  # published, approved, rejected: the author
            people = _author(obj)
    elif isinstance(obj, Comment):
        account = obj.post.account
        if kind == Kind.COMMENT_MENTION:
            people = [mention.user for mention in obj.mentions.select_related("user")]
        elif kind == Kind.POST_COMMENT:  # a teammate's comment: the post's author
            people = _author(obj.post)
        else:  # a client's comment: the post's author and those who approve its account's posts
            people = _author(obj.post) + list(users_to_tell_of_client_comment(obj.post))
        people = [person for person in people if person.role != Role.CLIENT]
    elif isinstance(obj, TikTokAccount):
        account = obj
        # Limits on posting concern those who post for it; the connection, those who manage it.
        limits = (Kind.ACCOUNT_DAILY_CAP, Kind.ACCOUNT_BANNED)
        people = list(users_with(Perm.DRAFT if kind in limits else Perm.MANAGE, account))
    elif isinstance(obj, Invitation):
        people = [obj.invited_by] if obj.invited_by is not None else []
    elif isinstance(obj, AuditExport):
        # The owner or admin who asked for it, while they still read the log.
        people = (
            [obj.requested_by] if obj.requested_by is not None and obj.requested_by.is_agency_admin else []
        )
    elif isinstance(obj, AgencyExport):
        # The owner who asked for it, while they are still an owner (the archive holds everything).
        people = (
            [obj.requested_by] if obj.requested_by is not None and obj.requested_by.role == Role.OWNER else []
        )
    elif isinstance(obj, ChatWebhook):
        # Webhooks are the owners' and admins' to set up: they hear when one is turned off.
        people = list(User.objects.filter(is_active=True, role__in=ADMIN_ROLES))
    else:
        raise TypeError(f"No recipients for {type(obj).__name__}")
    unique: dict[uuid.UUID, User] = {}
    for person in people:
        if not person.is_active or (actor is not None and person.pk == getattr(actor, "pk", None)):
            continue
        if account is not None and not user_may(person, Perm.VIEW, account):
            continue
        unique[person.pk] = person
    return list(unique.values())


def may_still_see(user: User, event: Event) -> bool:
    """The send-time check: the person is active and may still see what the event is about."""
    if not user.is_active:
        return False
    if event.kind in COMMENT_KINDS and user.role == Role.CLIENT:
        return False
    if event.account_id is not None:
        account = TikTokAccount.objects.filter(pk=event.account_id).first()
        return account is not None and user_may(user, Perm.VIEW, account)
    if event.kind in (Kind.INVITATION_ACCEPTED, Kind.WEBHOOK_DISABLED):
        return user.is_agency_admin
    if event.kind == Kind.AUDIT_EXPORT_FINISHED:
        return bool(user.is_agency_admin)
    if event.kind == Kind.EXPORT_FINISHED:
        return bool(user.role == Role.OWNER)
    return True


# --- Preferences and quiet hours ---


def enabled_channels(users: Iterable[User], kind: str) -> dict[uuid.UUID, set[str]]:
    """Each person's channels for `kind`: their own choice, else the agency's default, else ours."""
    ids = [u.pk for u in users]
    rows = Preference.objects.filter(Q(user_id__in=ids) | Q(user__isnull=True), kind=kind).values_list(
        "user_id", "channel", "enabled"
    )
    agency: dict[str, bool] = {}
    own: dict[tuple[uuid.UUID, str], bool] = {}
    for user_id, channel, enabled in rows:
        if user_id is None:
            agency[channel] = enabled
        else:
            own[(user_id, channel)] = enabled
    result: dict[uuid.UUID, set[str]] = {}
    for user_id in ids:
        result[user_id] = {
            channel
            for channel in Channel.values
            if own.get((user_id, channel), agency.get(channel, (kind, channel) not in OFF_BY_DEFAULT))
        }
    return result


def channel_default(kind: str, channel: str) -> bool:
    """The agency's default for `kind` on `channel` (ours when the admins set none)."""
    row = Preference.objects.filter(user__isnull=True, kind=kind, channel=channel).first()
    return row.enabled if row is not None else (kind, channel) not in OFF_BY_DEFAULT


def email_not_before(user: User, settings_row: PersonSettings | None, now: dt.datetime) -> dt.datetime:
    """Now, or the end of the person's quiet hours when they are in them."""
    if settings_row is None:
        return now
    until = settings_row.quiet_until(now, zoneinfo.ZoneInfo(user.time_zone or "UTC"))
    return until or now


# --- Writing an event ---


def _describe(emitted: Emitted) -> dict[str, Any]:
    """Title, body, link and object of the event, as its recipients will read them."""
    obj, kind, data = emitted.obj, emitted.kind, emitted.data
    if isinstance(obj, Post):
        where = f"@{obj.account.username}" if obj.account.username else str(obj.account)
        titles = {
            Kind.POST_FAILED: f"A post for {where} failed",
            Kind.POST_NEEDS_ATTENTION: f"A post for {where} needs attention",
            Kind.POST_PUBLISHED: f"A post for {where} was published",
            Kind.APPROVAL_REQUESTED: f"A post for {where} waits for approval",
            Kind.POST_APPROVED: f"Your post for {where} was approved",
            Kind.POST_REJECTED: f"Your post for {where} was rejected",
        }
        body = data.get("message") or data.get("comment") or ""
        return {
            "title": f"{titles[Kind(kind)]}: “{obj}”",
            "body": body,
            "path": reverse("posts:detail", kwargs={"pk": obj.pk}),
            "account": obj.account,
            "post": obj,
        }
    if isinstance(obj, Comment):
        post = obj.post
        where = f"@{post.account.username}" if post.account.username else str(post.account)
        if kind == Kind.COMMENT_MENTION:
            title = f"{obj.author_label} mentioned you on a post for {where}"
        elif kind == Kind.POST_COMMENT:
            title = f"{obj.author_label} commented on your post for {where}"
        else:
            title = f"{obj.author_label} commented on a post for {where}"
        path = reverse("posts:detail", kwargs={"pk": post.pk})
        return {
            "title": f"{title}: “{post}”"[:300],
            "body": obj.body,
            "path": f"{path}#comment-{obj.pk}",
            "account": post.account,
            "post": post,
        }
    if isinstance(obj, TikTokAccount):
        titles = {
            Kind.ACCOUNT_NEEDS_REAUTH: f"{obj} needs reconnecting",
            Kind.ACCOUNT_REVOKED: f"{obj} removed Postline's access",
            Kind.ACCOUNT_DAILY_CAP: f"{obj} reached TikTok's daily posting limit",
            Kind.ACCOUNT_BANNED: f"TikTok banned {obj} from posting",
        }
        return {
            "title": titles[Kind(kind)],
            "body": data.get("reason") or obj.status_reason,
            "path": reverse("accounts:list"),
            "account": obj,
        }
    if isinstance(obj, ChatWebhook):
        return {
            "title": f"Webhook “{obj.name}” was turned off: its deliveries failed for a day",
            "body": obj.disabled_reason,
            "path": reverse("notifications:webhook", kwargs={"pk": obj.pk}),
        }
    if isinstance(obj, AuditExport):
        ready = bool(data.get("ready"))
        rows = f"{obj.rows_done:,} entries"
        return {
            "title": f"Your audit log export is ready to download ({rows})"
            if ready
            else "Your audit log export failed",
            "body": (
                f"Download it from the audit log page within {settings.EXPORT_LINK_DAYS} days."
                if ready
                else obj.error
            ),
            "path": reverse("audit:list"),
        }
    if isinstance(obj, AgencyExport):
        ready = bool(data.get("ready"))
        return {
            "title": "Your agency export is ready to download" if ready else "Your agency export failed",
            "body": (f"The download link lasts {settings.EXPORT_LINK_DAYS} days." if ready else obj.error),
            "path": reverse("exports:page"),
        }
    if isinstance(obj, Invitation):
        who = obj.accepted_user.get_full_name() if obj.accepted_user else obj.email
        path = reverse("team:member", kwargs={"pk": obj.accepted_user_id}) if obj.accepted_user_id else ""
        return {
            "title": f"{who} accepted your invitation and joined as {obj.get_role_display().lower()}",
            "body": "",
            "path": path or reverse("team:list"),
        }
    raise TypeError(f"Cannot describe {type(obj).__name__}")


def event_write(emitted: Emitted) -> Fanout:
    """Write the event and its rows (nothing when an event with its key exists already)."""
    kind = Kind(emitted.kind)
    event = Event(kind=kind, key=f"{kind}:{emitted.key}"[:200], actor=emitted.actor, **_describe(emitted))
    Event.objects.bulk_create([event], ignore_conflicts=True)
    if not Event.objects.filter(pk=event.pk).exists():
        return Fanout()  # told already
    people = recipients(kind, emitted.obj, emitted.actor)
    fanout = notifications_write(event, people)
    fanout.chat_delivery_ids = chat_deliveries_write(event)
    return fanout


def notifications_write(event: Event, people: list[User], now: dt.datetime | None = None) -> Fanout:
    """One row per person and channel they chose, email held through their quiet hours."""
    now = now or timezone.now()
    fanout = Fanout()
    if not people:
        return fanout
    channels = (
        {p.pk: {Channel.EMAIL.value} for p in people}
        if event.kind == Kind.DIGEST
        else enabled_channels(people, event.kind)
    )
    quiet = {s.user_id: s for s in PersonSettings.objects.filter(user__in=people)}
    rows = []
    for person in people:
        for channel in sorted(channels.get(person.pk, ())):
            not_before = now
            status = Status.SENT if channel == Channel.IN_APP else Status.PENDING
            if channel == Channel.EMAIL:
                not_before = email_not_before(person, quiet.get(person.pk), now)
                fanout.email_user_ids.add(person.pk)
            rows.append(
                Notification(
                    event=event,
                    recipient=person,
                    channel=channel,
                    status=status,
                    not_before=not_before,
                    sent_at=now if channel == Channel.IN_APP else None,
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return fanout


def chat_deliveries_write(event: Event) -> list[uuid.UUID]:
    hooks = ChatWebhook.objects.filter(is_active=True, kinds__contains=[event.kind])
    rows = [ChatDelivery(webhook=hook, event=event, next_attempt_at=timezone.now()) for hook in hooks]
    ChatDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return [row.pk for row in rows]
