from django.urls import path

from apps.queues import views

app_name = "queues"

urlpatterns = [
    path("", views.queue_index, name="index"),
    path("<uuid:account_id>/", views.queue_page, name="queue"),
    path("<uuid:account_id>/slots/", views.slot_add_view, name="slot_add"),
    path("<uuid:account_id>/slots/<uuid:slot_id>/remove/", views.slot_remove_view, name="slot_remove"),
    path("<uuid:account_id>/time-zone/", views.zone_view, name="zone"),
    path("<uuid:account_id>/move/", views.move_view, name="move"),
]
