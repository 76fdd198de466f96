"""An agency's site, served on its subdomain."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.web import views

admin.site.site_header = "Agency admin"
admin.site.site_title = "Agency admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("apps.accounts.urls")),
    path("admin/", admin.site.urls),
]
