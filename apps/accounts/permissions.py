"""Who may do what with each TikTok account: the one rule every page and query follows.

Owners and admins hold every permission on every account. Everyone else holds what
django-guardian records for them per account; their role only decides what they get by
default when an account is granted to them (an invitation, a role change). Every question
("may this person see this post?") comes down to the account the object belongs to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.models import TikTokAccount, TikTokAccountUserObjectPermission
from apps.audit.services import audit_record
from apps.users.models import Role, User


class Perm(StrEnum):
    """Guardian codenames of the per-account permissions, in the order pages show them."""

    VIEW = "view_tiktokaccount"
    DRAFT = "draft_post"
    PUBLISH = "publish_post"
    APPROVE = "approve_post"
    MANAGE = "manage_connection"

    @property
    def label(self) -> str:
        return PERM_LABELS[self]


PERM_LABELS = {
    Perm.VIEW: "View",
    Perm.DRAFT: "Draft",
    Perm.PUBLISH: "Schedule without approval",
    Perm.APPROVE: "Approve",
    Perm.MANAGE: "Manage connection",
}
ALL_PERMS = frozenset(Perm)
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# What an account granted to someone gives them, by role. Owners and admins need no grant.
ROLE_DEFAULTS: dict[str, frozenset[Perm]] = {
    Role.OWNER: ALL_PERMS,
    Role.ADMIN: ALL_PERMS,
    Role.MANAGER: ALL_PERMS,
    Role.EDITOR: frozenset({Perm.VIEW, Perm.DRAFT}),
    Role.VIEWER: frozenset({Perm.VIEW}),
    Role.CLIENT: frozenset({Perm.VIEW, Perm.APPROVE}),
}


def holds_every_account(user: Any) -> bool:
    """Owners and admins: every permission on every account, without grants."""
    return bool(user.is_authenticated and user.is_active and user.role in ADMIN_ROLES)


def granted_account_ids(user: Any, perm: Perm) -> QuerySet[Any]:
    """Ids of the accounts (removed ones included) granted to `user` with `perm`, as a subquery.
    Owners and admins need no grant: callers check `holds_every_account` first."""
    return TikTokAccountUserObjectPermission.objects.filter(user=user, permission__codename=perm).values(
        "content_object_id"
    )


# Who may connect a new TikTok account (its connector is then granted it); reconnecting and
# disconnecting an existing one takes Perm.MANAGE on it.
CONNECT_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})


def may_connect(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active) and (
        user.role in CONNECT_ROLES or accounts_with(user, Perm.MANAGE).exists()
    )


def accounts_with(user: Any, perm: Perm = Perm.VIEW) -> QuerySet[TikTokAccount]:
    """The accounts on which `user` holds `perm`: the list every page and query filters through."""
    accounts = TikTokAccount.objects.order_by("username", "display_name")
    if not (user.is_authenticated and user.is_active):
        return accounts.none()
    if holds_every_account(user):
        return accounts
    return accounts.filter(pk__in=granted_account_ids(user, perm))


def account_perms(user: Any, account: TikTokAccount) -> frozenset[Perm]:
    """Every permission `user` holds on `account`, in one query."""
    if not (user.is_authenticated and user.is_active):
        return frozenset()
    if holds_every_account(user):
        return ALL_PERMS
    codenames = TikTokAccountUserObjectPermission.objects.filter(
        user=user, content_object=account
    ).values_list("permission__codename", flat=True)
    return frozenset(Perm(code) for code in codenames if code in Perm._value2member_map_)


def user_may(user: Any, perm: Perm, account: TikTokAccount) -> bool:
    return perm in account_perms(user, account)


def needs_approval(user: Any, account: TikTokAccount) -> bool:
    """Whether `user`'s posts on `account` wait for someone to approve them before they are scheduled."""
    return account.requires_approval and not user_may(user, Perm.PUBLISH, account)


def may_publish_directly(perms: frozenset[Perm], account: TikTokAccount) -> bool:
    """Whether someone holding `perms` on `account` may send its posts to TikTok without approval
    (schedule, publish now, retry, resolve a post that needs attention)."""
    return Perm.PUBLISH in perms or (Perm.DRAFT in perms and not account.requires_approval)


def get_account_for_user(user: Any, pk: uuid.UUID | str, perm: Perm = Perm.VIEW) -> TikTokAccount:
    """The one gate to a single account: 404 unless `user` holds `perm` on it."""
    account = accounts_with(user, perm).filter(pk=pk).first()
    if account is None:
        raise Http404("No such account.")
    return account


def access_table(user: Any) -> dict[uuid.UUID, frozenset[Perm]]:
    """What has been granted to `user`, account by account, in one query (owners and admins
    hold everything whatever this says)."""
    table: dict[uuid.UUID, set[Perm]] = {}
    rows = TikTokAccountUserObjectPermission.objects.filter(user=user).values_list(
        "content_object_id", "permission__codename"
    )
    for account_id, code in rows:
        if code in Perm._value2member_map_:
            table.setdefault(account_id, set()).add(Perm(code))
    return {account_id: frozenset(perms) for account_id, perms in table.items()}


def _in_order(perms: set[Perm]) -> list[str]:
    """Codenames in the order pages show them."""
    return [perm.value for perm in Perm if perm in perms]


@transaction.atomic
def access_set(
    *,
    user: Any,
    account: TikTokAccount,
    perms: Iterable[Perm],
    by: Any,
    request: Any = None,
    audit: bool = True,
) -> bool:
    """Make `perms` exactly what `user` holds on `account` (View is implied by any other).

    Returns whether anything changed; a change is audited as `access.changed`, with what was
    held before and after ({"old": [...], "new": [...]}, codenames)."""
    wanted = set(perms)
    if wanted:
        wanted.add(Perm.VIEW)
    held = set(access_table(user).get(account.pk, ()))
    added, removed = wanted - held, held - wanted
    for perm in sorted(added):
        assign_perm(f"accounts.{perm}", user, account)
    for perm in sorted(removed):
        remove_perm(f"accounts.{perm}", user, account)
    if (added or removed) and audit:
        audit_record(
            action="access.changed",
            actor=by,
            obj=account,
            request=request,
            changes={"user": user.email, "access": {"old": _in_order(held), "new": _in_order(wanted)}},
        )
    return bool(added or removed)


def access_grant_defaults(
    *, user: Any, accounts: Iterable[TikTokAccount], by: Any, request: Any = None
) -> None:
    """Give `user` their role's default permissions on each of `accounts`."""
    for account in accounts:
        access_set(user=user, account=account, perms=ROLE_DEFAULTS[user.role], by=by, request=request)


def users_with(perm: Perm, account: TikTokAccount) -> QuerySet[User]:
    """The active people holding `perm` on `account`: owners and admins, and everyone granted it."""
    from_grants = TikTokAccountUserObjectPermission.objects.filter(
        content_object=account, permission__codename=perm
    ).values("user_id")
    return User.objects.filter(is_active=True).filter(Q(role__in=ADMIN_ROLES) | Q(pk__in=from_grants))
