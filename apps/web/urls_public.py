"""The root domain's public pages."""

from django.urls import path

from apps.web import views

urlpatterns = [
    path("", views.landing, name="landing"),
]
