from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apps.accounts.models import TikTokAccount
from apps.accounts.services import account_disconnect


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

    actions = ["disconnect_accounts"]

    # Accounts arrive through TikTok's consent (their tokens with them) and their status follows
    # TikTok: neither is typed in here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Deleting a row would leave the grant alive at TikTok and the tokens stored: the admin offers
    # Disconnect instead, the same service as the Accounts page (revoke, wipe, unschedule).
    def has_delete_permission(self, request: HttpRequest, obj: TikTokAccount | None = None) -> bool:
        return False

    @admin.action(description="Disconnect selected accounts (revoke at TikTok)")
    def disconnect_accounts(
        self, request: HttpRequest, queryset: QuerySet[TikTokAccount]
    ) -> TemplateResponse | None:
        accounts = list(queryset)
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/accounts/disconnect_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Disconnect these accounts?",
                    "accounts": accounts,
                    "opts": self.model._meta,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        moved = 0
        for account in accounts:
            moved += account_disconnect(account=account, by=request.user, request=request)
        self.message_user(
            request,
            f"Disconnected {len(accounts)} account(s); their tokens were revoked at TikTok and wiped. "
            f"{moved} waiting post(s) went back to drafts.",
            messages.SUCCESS,
        )
        return None

    @admin.display(description="Token")
    def token_status(self, obj: TikTokAccount) -> str:
        return obj.token_status().label
