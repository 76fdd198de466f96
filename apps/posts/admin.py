from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.posts.models import Post, PostMedia, PublishAttempt
from apps.posts.services import PostStateError, post_cancel


class PublishAttemptInline(admin.TabularInline):
    model = PublishAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "attempt_number",
        "kind",
        "outcome",
        "http_status",
        "error_code",
        "error_message",
        "log_id",
        "started_at",
        "finished_at",
    ]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["__str__", "account", "status", "scheduled_at", "privacy_level", "published_at"]
    list_filter = ["status", "privacy_level", "mode", "commercial_disclosure", "account"]
    list_select_related = ["account"]
    search_fields = ["caption", "publish_id", "published_post_id", "account__username"]
    date_hierarchy = "scheduled_at"
    readonly_fields = [
        "status",
        "publish_id",
        "published_post_id",
        "published_at",
        "last_error_code",
        "last_error_message",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ]
    raw_id_fields = ["account"]
    # TikTok's upload URL is a bearer credential for the upload: never shown.
    exclude = ["upload_url"]
    inlines = [PublishAttemptInline]
    actions = ["cancel_posts"]

    # Posts are written through the composer, the calendar and the approval pages, which keep
    # the lifecycle (publish jobs, approval, TikTok's rules): here they are read, cancelled or deleted.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Cancel selected posts")
    def cancel_posts(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        cancelled, refused = 0, []
        for post in queryset:
            try:
                post_cancel(post=post, by=request.user, request=request)
                cancelled += 1
            except PostStateError as exc:
                refused.append(f"“{post}”: {exc}")
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} post(s).", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


@admin.register(PostMedia)
class PostMediaAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "post",
        "mime_type",
        "size_bytes",
        "duration_seconds",
        "width",
        "height",
    ]
    list_filter = ["kind", "mime_type"]
    list_select_related = ["post"]
    search_fields = ["original_name", "sha256"]
    raw_id_fields = ["post"]
    readonly_fields = ["sha256", "size_bytes", "mime_type", "duration_seconds", "width", "height"]

    # Uploads are checked and attached by the composer; moving a video to another post here
    # would skip those checks.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PublishAttempt)
class PublishAttemptAdmin(admin.ModelAdmin):
    list_display = ["post", "attempt_number", "kind", "outcome", "http_status", "error_code", "started_at"]
    list_filter = ["kind", "outcome"]
    list_select_related = ["post"]
    search_fields = ["error_code", "log_id", "post__publish_id"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
