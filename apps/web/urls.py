"""The agency's own pages that belong to no other app: home, sign-in and out, password reset, settings."""

from django.contrib.auth import views as auth_views
from django.urls import path

from apps.schedule import views as schedule_views
from apps.web import views

urlpatterns = [
    path("", schedule_views.dashboard, name="home"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("welcome/<str:token>/", views.welcome, name="welcome"),
    path("verify-email/", views.email_verification, name="email_verification"),
    path("verify-email/send/", views.email_verification_resend, name="email_verification_send"),
    path(
        "verify-email/<str:token>/",
        views.email_verification_confirm_view,
        name="email_verification_confirm",
    ),
    path("settings/", views.agency_settings, name="settings"),
    path("settings/brand/", views.agency_brand, name="settings_brand"),
    path("settings/two-step/", views.agency_mfa_policy, name="settings_mfa"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/", views.profile, name="profile"),
    path("profile/email/", views.profile_email, name="profile_email"),
    path("profile/email/<str:token>/", views.email_change_confirm_view, name="email_change_confirm"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
]
