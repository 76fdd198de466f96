"""The operators' console, on the root domain only (config/urls_public.py)."""

from django.urls import path

from apps.operators import views

app_name = "operators"

urlpatterns = [
    path("", views.console, name="console"),
    path("agencies/<int:pk>/status/", views.agency_status, name="agency_status"),
]
