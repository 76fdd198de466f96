from django.urls import path

from apps.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("bell/", views.bell, name="bell"),
    path("read-all/", views.read_all, name="read_all"),
    path("<uuid:pk>/open/", views.open_notification, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("defaults/", views.defaults, name="defaults"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<uuid:pk>/", views.webhook_detail, name="webhook"),
    path("webhooks/<uuid:pk>/test/", views.webhook_test, name="webhook_test"),
    path("webhooks/<uuid:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path(
        "webhooks/<uuid:pk>/deliveries/<uuid:delivery_pk>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
