from django.urls import path

from apps.posts import views

app_name = "posts"

urlpatterns = [
    path("", views.post_list, name="list"),
    path("new/", views.post_compose, name="compose"),
    path("approvals/", views.approvals, name="approvals"),
    path("creator-info/", views.creator_info, name="creator_info"),
    path("media/", views.media_upload_view, name="upload"),
    path("media/<uuid:pk>/file/", views.media_file, name="media_file"),
    path("photos/", views.photo_upload_view, name="photo_upload"),
    path("photos/carousel/", views.photo_carousel, name="photo_carousel"),
    path("<uuid:pk>/", views.post_detail, name="detail"),
    path("<uuid:pk>/edit/", views.post_edit, name="edit"),
    path("<uuid:pk>/cancel/", views.post_cancel_view, name="cancel"),
    path("<uuid:pk>/retry/", views.post_retry_view, name="retry"),
    path("<uuid:pk>/mark-published/", views.post_mark_published_view, name="mark_published"),
    path("<uuid:pk>/reschedule/", views.post_reschedule_view, name="reschedule"),
    path("<uuid:pk>/approve/", views.post_approve_view, name="approve"),
    path("<uuid:pk>/reject/", views.post_reject_view, name="reject"),
]
