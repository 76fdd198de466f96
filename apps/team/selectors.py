"""The gates to team members and invitations, and the Team page's lists.

Only owners and admins see the team: for anyone else every gate answers 404, as if the page
did not exist. Deactivated members have no page of their own (nothing can be done to them
there); the list shows them apart, with who deactivated them and when.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.models import TikTokAccountUserObjectPermission
from apps.common.pagination import Keyset
from apps.team.models import Invitation
from apps.users.models import Role, User

ROLE_ORDER = {role: index for index, role in enumerate(Role.values)}


def may_manage_team(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_agency_admin)


def require_team_admin(user: Any) -> None:
    if not may_manage_team(user):
        raise Http404("No such page.")


def get_member_for_user(user: Any, pk: uuid.UUID | str) -> User:
    """The one gate to an active member: 404 unless `user` is an owner or admin."""
    require_team_admin(user)
    member = User.objects.filter(pk=pk, is_active=True).first()
    if member is None:
        raise Http404("No such member.")
    return member


def get_invitation_for_user(user: Any, pk: uuid.UUID | str) -> Invitation:
    """The one gate to an invitation: 404 unless `user` is an owner or admin."""
    require_team_admin(user)
    invitation = Invitation.objects.select_related("invited_by").filter(pk=pk).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


# Owners first, then by role and address; the id breaks ties (apps.common.pagination).
MEMBER_ORDER = Keyset(("role_rank", "email", "id"))


def members_active(user: Any) -> QuerySet[User]:
    """Active members, owners first, each with `account_count` (accounts granted to them) and
    `role_rank` (for MEMBER_ORDER: page them with apps.common.pagination.keyset_page)."""
    require_team_admin(user)
    rank = Case(
        *[When(role=role, then=Value(index)) for role, index in ROLE_ORDER.items()],
        default=Value(len(ROLE_ORDER)),
        output_field=IntegerField(),
    )
    # Counted per member by a subquery on guardian's user index: a join and GROUP BY over every
    # grant of the agency sorted two thousand rows for a page of fifty.
    granted = (
        TikTokAccountUserObjectPermission.objects.filter(user=OuterRef("pk"))
        .values("user")
        .annotate(accounts=Count("content_object", distinct=True))
        .values("accounts")
    )
    return User.objects.filter(is_active=True).annotate(
        role_rank=rank,
        account_count=Coalesce(Subquery(granted, output_field=IntegerField()), 0),
    )


def members_deactivated(user: Any) -> QuerySet[User]:
    """Deactivated members, most recent first, with who deactivated them."""
    require_team_admin(user)
    return (
        User.all_objects.filter(deleted_at__isnull=False).select_related("deleted_by").order_by("-deleted_at")
    )


def invitations_pending(user: Any) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (expired ones included, to resend), newest first."""
    require_team_admin(user)
    return (
        Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .prefetch_related("accounts")
        .order_by("-created_at")
    )
