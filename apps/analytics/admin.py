from django.contrib import admin

from apps.analytics.models import AccountSnapshot


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(admin.ModelAdmin):
    list_display = ["account", "date", "followers", "follower_growth", "views", "likes", "engagement_rate"]
    list_filter = ["date", "account"]
    list_select_related = ["account"]
    search_fields = ["account__username"]
    date_hierarchy = "date"
