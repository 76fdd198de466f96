"""What the navigation offers, from the same permission rule as the pages it links to."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.accounts.permissions import Perm, accounts_with, holds_every_account


def _may(user: Any, perm: Perm) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return holds_every_account(user) or accounts_with(user, perm).exists()


def navigation(request: HttpRequest) -> dict[str, Any]:
    """`may_draft_somewhere` and `may_approve_somewhere`, each asked only when a template reads it
    (one query for a member with grants, none for owners and admins)."""
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or tenant is None or tenant.is_public:
        return {}
    return {
        "may_draft_somewhere": SimpleLazyObject(lambda: _may(user, Perm.DRAFT)),
        "may_approve_somewhere": SimpleLazyObject(lambda: _may(user, Perm.APPROVE)),
    }
