from django.urls import path

from apps.api import views

app_name = "api_keys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("<uuid:pk>/revoke/", views.key_revoke, name="revoke"),
]
