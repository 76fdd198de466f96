"""Pages for an agency's clients, opened by a link's token (no account needed). Their paths are
masked in logs (apps.common.log_redaction)."""

from django.urls import path

from apps.comments import views as comments
from apps.reviews import views

app_name = "client"

urlpatterns = [
    path("review/<str:token>/", views.client_review, name="review"),
    path("review/<str:token>/posts/<uuid:post_id>/", views.client_decide, name="decide"),
    path("review/<str:token>/posts/<uuid:post_id>/comments/", comments.client_comment, name="comment"),
    path("review/<str:token>/media/<uuid:media_id>/", views.client_media, name="media"),
    path("calendar/<str:token>/", views.client_calendar, name="calendar"),
]
