"""An agency's site, served on its subdomain."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Agency admin"
admin.site.site_title = "Agency admin"

urlpatterns = [
    path("", include("apps.web.urls")),
    path("posts/", include("apps.posts.urls")),
    path("calendar/", include("apps.schedule.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("analytics/", include("apps.analytics.urls")),
    path("audit/", include("apps.audit.urls")),
    path("team/", include("apps.team.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("admin/", admin.site.urls),
]
