from django.urls import path

from apps.comments import views

app_name = "comments"

urlpatterns = [
    path("posts/<uuid:post_id>/", views.post_comments, name="post"),
    path("<uuid:pk>/delete/", views.comment_delete_view, name="delete"),
]
