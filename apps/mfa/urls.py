"""Two-step sign-in, on both sites (an agency's subdomain and the root domain)."""

from django.urls import path

from apps.mfa import views

app_name = "mfa"

urlpatterns = [
    path("", views.setup, name="setup"),
    path("code/", views.verify, name="verify"),
    path("qr.svg", views.qr, name="qr"),
    path("confirm/", views.confirm, name="confirm"),
    path("recovery-codes/", views.codes_regenerate, name="codes"),
    path("turn-off/", views.disable, name="disable"),
    path("sign-out/", views.sign_out, name="logout"),
]
