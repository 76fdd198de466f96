"""The root domain: the public site, the operators' admin, and TikTok's callbacks."""

from django.urls import include, path

from apps.accounts.views import oauth_callback
from apps.posts.views import tiktok_photo
from apps.tiktok.views import webhook
from tenants.admin import operator_site

urlpatterns = [
    path("", include("apps.web.urls_public")),
    path("account/two-step/", include("apps.mfa.urls")),
    path("admin/", operator_site.urls),
    path("operators/", include("apps.operators.urls")),
    path("oauth/tiktok/callback/", oauth_callback, name="tiktok_oauth_callback"),
    path("webhooks/tiktok/", webhook, name="tiktok_webhook"),
    # TIKTOK_MEDIA_BASE_URL points here: TikTok downloads photo posts' photos (apps.posts.photos).
    path("tiktok-media/<str:token>", tiktok_photo, name="tiktok_photo"),
]
