"""An agency's site, served on its subdomain."""

from django.contrib import admin
from django.urls import include, path

from apps.api.api import api
from apps.common.admin_views import agency_view_on_site
from apps.posts.views import library_upload

admin.site.site_header = "Agency admin"
admin.site.site_title = "Agency admin"

urlpatterns = [
    path("", include("apps.web.urls")),
    path("posts/import/", include("apps.imports.urls")),
    path("posts/", include("apps.posts.urls")),
    path("calendar/", include("apps.schedule.urls")),
    path("queues/", include("apps.queues.urls")),
    path("captions/", include("apps.captions.urls")),
    # Uploading to the library is checked as the composer's uploads are (apps.posts).
    path("media/upload/", library_upload, name="library_upload"),
    path("media/", include("apps.media.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("analytics/", include("apps.analytics.urls")),
    path("audit/", include("apps.audit.urls")),
    path("team/", include("apps.team.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("api/v1/", api.urls),
    path("settings/api-keys/", include("apps.api.urls")),
    path("settings/export/", include("apps.exports.urls")),
    path("reviews/", include("apps.reviews.urls")),
    path("comments/", include("apps.comments.urls")),
    # Opened by a link's token, without signing in (apps.reviews).
    path("client/", include("apps.reviews.urls_client")),
    path("reports/", include("apps.reports.urls")),
    path("brand/", include("apps.brand.urls")),
    # Before the admin's own: its shortcut would reach public-schema tables.
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(agency_view_on_site)),
    path("account/two-step/", include("apps.mfa.urls")),
    path("admin/", admin.site.urls),
]
