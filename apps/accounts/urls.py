from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.account_list, name="list"),
    path("connect/", views.account_connect_start, name="connect"),
    path("connect/finish/", views.account_connect_finish, name="connect_finish"),
    path("<uuid:pk>/disconnect/", views.account_disconnect_view, name="disconnect"),
    path("<uuid:pk>/approval/", views.account_approval_view, name="approval"),
    path("<uuid:pk>/client/", views.account_client_view, name="client"),
]
