"""The root domain: the public site and the operators' admin."""

from django.urls import path

from apps.web import views
from tenants.admin import operator_site

urlpatterns = [
    path("", views.landing, name="landing"),
    path("admin/", operator_site.urls),
]
