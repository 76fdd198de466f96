from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.team.models import Invitation

# Everything but token_hash.
SHOWN = (
    "email",
    "role",
    "accounts",
    "invited_by",
    "created_at",
    "expires_at",
    "accepted_at",
    "accepted_user",
    "revoked_at",
)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are sent, resent and revoked on the Team page (apps.team.services).
    The token's hash is never shown."""

    list_display = ["email", "role", "invited_by", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    list_select_related = ["invited_by"]
    search_fields = ["email"]
    fields = SHOWN
    readonly_fields = SHOWN

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
