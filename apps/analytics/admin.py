from django.contrib import admin

from apps.analytics.models import AccountSnapshot, VideoSnapshot


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(admin.ModelAdmin):
    list_display = ["account", "date", "followers", "follower_growth", "views", "likes", "engagement_rate"]
    list_filter = ["date", "account"]
    list_select_related = ["account"]
    search_fields = ["account__username"]
    date_hierarchy = "date"


@admin.register(VideoSnapshot)
class VideoSnapshotAdmin(admin.ModelAdmin):
    list_display = ["video_id", "title", "account", "date", "views", "likes", "comments", "shares", "post"]
    list_filter = ["date", "account"]
    list_select_related = ["account", "post"]
    search_fields = ["video_id", "title", "account__username"]
    date_hierarchy = "date"
    raw_id_fields = ["post"]
