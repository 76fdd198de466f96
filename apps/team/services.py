"""The agency's team: invitations, roles, per-account access, deactivation and ownership.

Rules every function here keeps, whoever calls it (the Team page, the admin, a command):

- Only owners and admins manage the team; only an owner may make, change or remove an owner.
- The agency always keeps an active owner. Changes that could remove the last one lock every
  owner row (SELECT ... FOR UPDATE) before counting, so two admins acting at once cannot both
  demote "one of the two remaining owners".
- A role's flags follow the role: owners and admins may use the agency's Django admin
  (is_staff, is_superuser), nobody else may.
- An invitation link carries a random 256-bit token; only its SHA-256 is stored. The link works
  once, for INVITATION_DAYS, and only on the agency that issued it (the invitation lives in that
  agency's schema, so another agency's host cannot even find it).
- Every change is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import (
    ADMIN_ROLES,
    Perm,
    access_grant_defaults,
    access_set,
    access_table,
)
from apps.audit.services import audit_record
from apps.common.outbox import notification_emit
from apps.team.invitation_email import INVITATION_DAYS, token_hash
from apps.team.models import Invitation
from apps.team.tasks import team_send_invitation_email
from apps.users.models import SERVICE_DOMAIN, Role, User
from tenants.dramatiq import send_on_commit

logger = logging.getLogger(__name__)


def _flags(role: str) -> dict[str, bool]:
    """Owners and admins run the agency's Django admin; nobody else may."""
    admin = role in ADMIN_ROLES
    return {"is_staff": admin, "is_superuser": admin}


def _require_admin(by: User) -> None:
    if not (by.is_active and by.is_agency_admin):
        raise ValidationError("Only owners and admins can manage the team.")


def _lock_owners() -> list[User]:
    """Every active owner's row, locked until the transaction ends (ordered: no deadlocks)."""
    return list(User.objects.select_for_update().filter(role=Role.OWNER, is_active=True).order_by("pk"))


def _lock_member(member: User) -> User:
    """The member's current row, locked; refuses a member deactivated since the page was shown."""
    fresh = User.objects.select_for_update().filter(pk=member.pk, is_active=True).first()
    if fresh is None:
        raise ValidationError(f"{member.email} is no longer an active member of this agency.")
    return fresh


def _agency() -> Any:
    return connection.tenant  # type: ignore[attr-defined]  # django-tenants sets it per request


# --- Invitations ---


def _queue_email(*, invitation: Invitation) -> None:
    # After commit (no email for an invitation that was rolled back), by a worker, so the page
    # answers as fast whatever happens at the mail server.
    send_on_commit(team_send_invitation_email, str(invitation.pk))


def _new_token() -> tuple[str, dt.datetime]:
    """A placeholder hash (of a token nobody holds) and a new expiry; the worker that sends the
    email replaces the hash with the real link's (apps.team.invitation_email)."""
    return token_hash(secrets.token_urlsafe(32)), timezone.now() + dt.timedelta(days=INVITATION_DAYS)


@transaction.atomic
def invitation_send(
    *,
    email: str,
    role: str,
    accounts: Iterable[TikTokAccount],
    by: User,
    request: HttpRequest | None = None,
) -> Invitation:
    """Invite `email` to join this agency as `role`, with `accounts` granted on acceptance.

    Emails the link after commit. Raises ValidationError keyed by field (email, role) when the
    address already belongs to a member or has an invitation pending.
    """
    _require_admin(by)
    email = email.strip().lower()
    if role == Role.OWNER or role not in Role.values:
        raise ValidationError(
            {"role": "Choose a role other than owner (ownership is transferred, not given)."}
        )
    if email.endswith(f"@{SERVICE_DOMAIN}"):
        raise ValidationError(
            {"email": "That address belongs to an API key: make keys on the API keys page."}
        )
    if User.objects.filter(email__iexact=email, is_active=True).exists():
        raise ValidationError({"email": f"{email} is already a member of this agency."})
    now = timezone.now()
    pending = Invitation.objects.select_for_update().filter(
        email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    )
    for open_invitation in pending:
        if open_invitation.expires_at > now:
            raise ValidationError(
                {
                    "email": f"{email} already has a pending invitation. "
                    "Resend it or revoke it in the list of invitations."
                }
            )
        # An expired invitation is dead anyway; closing it makes room for the new one.
        open_invitation.revoked_at = now
        open_invitation.save(update_fields=["revoked_at", "updated_at"])
    accounts = list(accounts)
    placeholder_hash, expires_at = _new_token()
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                email=email,
                role=role,
                invited_by=by,
                created_by=by,
                token_hash=placeholder_hash,
                expires_at=expires_at,
            )
    except IntegrityError as exc:  # the same address invited by someone else at this moment
        raise ValidationError({"email": f"{email} already has a pending invitation."}) from exc
    invitation.accounts.set(accounts)
    audit_record(
        action="invitation.sent",
        actor=by,
        obj=invitation,
        request=request,
        changes={
            "email": email,
            "role": role,
            "accounts": sorted(str(account) for account in accounts),
            "expires_at": expires_at.isoformat(),
        },
    )
    _queue_email(invitation=invitation)
    return invitation


def _lock_open_invitation(invitation: Invitation) -> Invitation:
    fresh = (
        Invitation.objects.select_for_update()
        .filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if fresh is None:
        raise ValidationError(f"The invitation for {invitation.email} has already been accepted or revoked.")
    return fresh


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by: User, request: HttpRequest | None = None) -> Invitation:
    """Email a new link with a new expiry; the previous link stops working at once."""
    _require_admin(by)
    invitation = _lock_open_invitation(invitation)
    invitation.token_hash, invitation.expires_at = _new_token()
    invitation.updated_by = by
    invitation.save(update_fields=["token_hash", "expires_at", "updated_by", "updated_at"])
    audit_record(
        action="invitation.resent",
        actor=by,
        obj=invitation,
        request=request,
        changes={"email": invitation.email, "expires_at": invitation.expires_at.isoformat()},
    )
    _queue_email(invitation=invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User, request: HttpRequest | None = None) -> Invitation:
    """Close an open invitation: its link stops working."""
    _require_admin(by)
    invitation = _lock_open_invitation(invitation)
    _revoke(invitation, by=by, request=request)
    return invitation


def _revoke(invitation: Invitation, *, by: User, request: HttpRequest | None, **why: str) -> None:
    """Close a locked open invitation (its link stops working) and audit it, with `why` if given."""
    invitation.revoked_at = timezone.now()
    invitation.updated_by = by
    invitation.save(update_fields=["revoked_at", "updated_by", "updated_at"])
    audit_record(
        action="invitation.revoked",
        actor=by,
        obj=invitation,
        request=request,
        changes={"email": invitation.email, **why},
    )


def _withdraw_invitations_sent_by(
    member: User, *, by: User, request: HttpRequest | None, reason: str
) -> None:
    """Someone who may no longer manage the team leaves no working invitation behind."""
    for invitation in Invitation.objects.select_for_update().filter(
        invited_by=member, accepted_at__isnull=True, revoked_at__isnull=True
    ):
        _revoke(invitation, by=by, request=request, reason=reason)


class InvitationError(Exception):
    """The link cannot be used; `code` is one of unknown, expired, used, revoked, member."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def invitation_for_token(raw: str, *, lock: bool = False) -> Invitation:
    """The open invitation a link's token names in this agency, or InvitationError saying why not."""
    invitations = Invitation.objects.select_related("invited_by")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(token_hash=token_hash(raw)).first()
    agency = _agency()
    if invitation is None:
        raise InvitationError(
            "unknown",
            f"This invitation link is not valid for {agency.name}. Check that you opened the whole "
            "link from the most recent invitation email, on the agency that invited you.",
        )
    if invitation.accepted_at is not None:
        raise InvitationError("used", "This invitation has already been accepted; each link works only once.")
    if invitation.revoked_at is not None:
        raise InvitationError("revoked", f"This invitation was withdrawn by {agency.name}.")
    inviter = invitation.invited_by
    if inviter is None or not (inviter.is_active and inviter.is_agency_admin):
        raise InvitationError(
            "revoked",
            f"This invitation was withdrawn: whoever sent it no longer manages {agency.name}'s team. "
            f"Ask {agency.name} to send you a new one.",
        )
    if invitation.expires_at <= timezone.now():
        raise InvitationError(
            "expired",
            f"This invitation expired on {invitation.expires_at:%d %B %Y}. "
            f"Ask {agency.name} to send you a new one.",
        )
    if User.objects.filter(email__iexact=invitation.email, is_active=True).exists():
        raise InvitationError(
            "member", f"{invitation.email} is already a member of {agency.name}: sign in instead."
        )
    return invitation


@transaction.atomic
def invitation_accept(*, raw: str, name: str, password: str, request: HttpRequest | None = None) -> User:
    """Create the invited person in this agency (only), with the invitation's role and accounts.

    Someone deactivated earlier with the same email is reactivated with the new role and
    password (their history stays theirs). Raises InvitationError when the link cannot be used,
    ValidationError (key password) when the password is too weak.
    """
    invitation = invitation_for_token(raw, lock=True)
    name = name.strip()
    previous = User.all_objects.select_for_update().filter(email__iexact=invitation.email).first()
    candidate = previous or User(email=invitation.email, name=name)
    candidate.name = name
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    flags = _flags(invitation.role)
    if previous is not None:
        # Only a deactivated user can still hold the address (invitation_for_token checked).
        user = previous
        user.name, user.role = name, invitation.role
        user.is_staff, user.is_superuser = flags["is_staff"], flags["is_superuser"]
        user.set_password(password)
        user.save(update_fields=["name", "role", "is_staff", "is_superuser", "password", "updated_at"])
        user.restore()
        # What they held before they left is not what they are invited to now.
        for account in TikTokAccount.objects.filter(pk__in=list(access_table(user))):
            access_set(user=user, account=account, perms=(), by=invitation.invited_by)
    else:
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    invitation.email, password, name=name, role=invitation.role, **flags
                )
        except IntegrityError as exc:
            raise InvitationError(
                "member", f"{invitation.email} is already a member of {_agency().name}: sign in instead."
            ) from exc
    accounts = list(invitation.accounts.all())
    if invitation.role not in ADMIN_ROLES:
        # The inviter chose the accounts; the grant is theirs (the invitee's IP is not).
        access_grant_defaults(user=user, accounts=accounts, by=invitation.invited_by)
    invitation.accepted_at = timezone.now()
    invitation.accepted_user = user
    invitation.save(update_fields=["accepted_at", "accepted_user", "updated_at"])
    audit_record(
        action="invitation.accepted",
        actor=user,
        obj=invitation,
        request=request,
        changes={
            "email": user.email,
            "role": invitation.role,
            "accounts": sorted(str(account) for account in accounts),
            "reactivated": previous is not None,
        },
    )
    notification_emit(kind="invitation_accepted", obj=invitation, key=str(invitation.pk), actor=user)
    return user


# --- Members ---


def _require_may_touch(*, member: User, by: User, role: str | None = None) -> None:
    # The actor as they are now, not as their request loaded them (demoted a moment ago?).
    actor = User.all_objects.filter(pk=by.pk).first() or by
    _require_admin(actor)
    if actor.role != Role.OWNER and (member.role == Role.OWNER or role == Role.OWNER):
        raise ValidationError("Only an owner can change an owner or make someone an owner.")


def _last_owner_guard(member: User, owners: list[User], doing: str) -> None:
    """Refuse to take away the agency's last active owner. `owners` were locked first and
    `member` read after (under the lock), so the role checked is the one being changed."""
    if member.role == Role.OWNER and [owner.pk for owner in owners] == [member.pk]:
        raise ValidationError(
            f"{member.email} is the agency's last owner and cannot be {doing}. "
            "Make someone else an owner first (or transfer ownership)."
        )


@transaction.atomic
def member_change_role(*, member: User, role: str, by: User, request: HttpRequest | None = None) -> bool:
    """Give `member` a new role (and its flags); re-grant the new role's defaults on the accounts
    they already had. Returns whether anything changed."""
    if role not in Role.values:
        raise ValidationError({"role": "Choose a role from the list."})
    _require_may_touch(member=member, by=by, role=role)
    owners = _lock_owners()
    member = _lock_member(member)
    _require_may_touch(member=member, by=by, role=role)  # again, on the row as it is now
    old = member.role
    if old == role:
        return False
    if role != Role.OWNER:
        _last_owner_guard(member, owners, "demoted")
    member.role = role
    flags = _flags(role)
    member.is_staff, member.is_superuser = flags["is_staff"], flags["is_superuser"]
    member.updated_by = by
    member.save(update_fields=["role", "is_staff", "is_superuser", "updated_by", "updated_at"])
    audit_record(
        action="member.role_changed",
        actor=by,
        obj=member,
        request=request,
        changes={"email": member.email, "role": {"old": old, "new": role}},
    )
    if role not in ADMIN_ROLES:
        granted = TikTokAccount.objects.filter(pk__in=list(access_table(member)))
        access_grant_defaults(user=member, accounts=granted, by=by, request=request)
        _withdraw_invitations_sent_by(member, by=by, request=request, reason=f"the inviter is now {role}")
    return True


@transaction.atomic
def member_set_access(
    *,
    member: User,
    table: Mapping[Any, Iterable[Perm]],
    by: User,
    request: HttpRequest | None = None,
) -> int:
    """Make `table` ({account id: permissions}) exactly what `member` holds on those accounts;
    accounts not in it are left as they are. Returns how many accounts changed."""
    _require_may_touch(member=member, by=by)
    member = _lock_member(member)
    if member.role in ADMIN_ROLES:
        raise ValidationError(
            f"{member.get_role_display()}s hold every permission on every account; "
            "change their role to limit what they can do."
        )
    wanted = {str(account_id): set(perms) for account_id, perms in table.items()}
    changed = 0
    for account in TikTokAccount.objects.filter(pk__in=list(wanted)).order_by("username"):
        changed += access_set(
            user=member, account=account, perms=wanted[str(account.pk)], by=by, request=request
        )
    return changed


def _sessions_end(user: User) -> int:
    """Delete the user's sessions in this agency's schema, so they are signed out at once."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def member_deactivate_check(*, member: User, by: User) -> None:
    """The refusal `member_deactivate` would give now (ValidationError), asked before the
    confirmation page is shown; `member_deactivate` checks again under its locks."""
    _require_may_touch(member=member, by=by)
    if member.pk == by.pk:
        raise ValidationError("You cannot deactivate yourself. Ask another owner or admin.")
    others = User.objects.filter(role=Role.OWNER, is_active=True).exclude(pk=member.pk)
    if member.role == Role.OWNER and not others.exists():
        raise ValidationError(
            f"{member.email} is the agency's last owner and cannot be deactivated. "
            "Make someone else an owner first (or transfer ownership)."
        )


def ownership_transfer_check(*, to: User, by: User) -> None:
    """The refusal `ownership_transfer` would give now (ValidationError), asked before the
    confirmation page is shown."""
    if not User.objects.filter(pk=by.pk, role=Role.OWNER, is_active=True).exists():
        raise ValidationError("Only an owner can transfer ownership.")
    if to.pk == by.pk:
        raise ValidationError("You already own this agency; choose someone else.")
    if to.role == Role.OWNER:
        raise ValidationError(f"{to.email} is already an owner.")
    if to.is_service:
        raise ValidationError("An API key cannot own the agency; choose a person.")


@transaction.atomic
def member_deactivate(*, member: User, by: User, request: HttpRequest | None = None) -> User:
    """Soft-delete `member`: they can no longer sign in, their sessions end now, their history
    (posts, audit entries) stays."""
    _require_may_touch(member=member, by=by)
    if member.pk == by.pk:
        raise ValidationError("You cannot deactivate yourself. Ask another owner or admin.")
    owners = _lock_owners()
    member = _lock_member(member)
    _require_may_touch(member=member, by=by)
    _last_owner_guard(member, owners, "deactivated")
    member.delete(by=by)
    sessions = _sessions_end(member)
    _withdraw_invitations_sent_by(member, by=by, request=request, reason="the inviter was deactivated")
    audit_record(
        action="member.deactivated",
        actor=by,
        obj=member,
        request=request,
        changes={"email": member.email, "role": member.role, "sessions_ended": sessions},
    )
    return member


@transaction.atomic
def ownership_transfer(*, to: User, by: User, request: HttpRequest | None = None) -> User:
    """`by`, an owner, makes `to` an owner and becomes an admin, in one step."""
    owners = {owner.pk: owner for owner in _lock_owners()}
    if by.pk not in owners:
        raise ValidationError("Only an owner can transfer ownership.")
    if to.pk == by.pk:
        raise ValidationError("You already own this agency; choose someone else.")
    to = _lock_member(to)
    if to.role == Role.OWNER:
        raise ValidationError(f"{to.email} is already an owner.")
    if to.is_service:
        raise ValidationError("An API key cannot own the agency; choose a person.")
    old_role = to.role
    for person, role in ((to, Role.OWNER), (owners[by.pk], Role.ADMIN)):
        person.role = role
        person.is_staff = person.is_superuser = True
        person.updated_by = by
        person.save(update_fields=["role", "is_staff", "is_superuser", "updated_by", "updated_at"])
    by.role = Role.ADMIN  # the caller's own object (request.user) follows
    audit_record(
        action="ownership.transferred",
        actor=by,
        obj=to,
        request=request,
        changes={
            "from": by.email,
            "to": to.email,
            "role": {"old": old_role, "new": Role.OWNER},
            "previous_owner_role": {"old": Role.OWNER, "new": Role.ADMIN},
        },
    )
    return to
