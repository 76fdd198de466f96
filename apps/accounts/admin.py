from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.models import TikTokAccount


@admin.register(TikTokAccount)
class TikTokAccountAdmin(admin.ModelAdmin):
    # Who may do what with an account is set on the Team page (audited, with the role rules),
    # so guardian's own object-permission pages are not offered here.
    # Tokens are never shown or editable here: `token_status` says what they allow.
    list_display = [
        "__str__",
        "display_name",
        "client_label",
        "status",
        "token_status",
        "access_expires_at",
        "requires_approval",
        "stats_synced_at",
    ]
    list_filter = ["status", "requires_approval"]
    search_fields = ["username", "display_name", "client_label", "open_id"]
    exclude = ["access_token", "refresh_token"]
    readonly_fields = [
        "open_id",
        "status",
        "status_reason",
        "token_status",
        "granted_scopes",
        "access_expires_at",
        "refresh_expires_at",
        "follower_count",
        "following_count",
        "likes_count",
        "video_count",
        "stats_synced_at",
        "created_at",
        "updated_at",
    ]

    # Accounts arrive through TikTok's consent (their tokens with them) and their status follows
    # TikTok: neither is typed in here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Token")
    def token_status(self, obj: TikTokAccount) -> str:
        return obj.token_status().label
