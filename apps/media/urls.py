from django.urls import path

from apps.media import views

app_name = "media"

urlpatterns = [
    path("", views.library, name="library"),
    path("<uuid:pk>/", views.item_detail, name="item"),
    path("<uuid:pk>/delete/", views.item_delete, name="delete"),
    path("<uuid:pk>/file/", views.item_file, name="file"),
    path("<uuid:pk>/thumbnail/", views.item_thumbnail, name="thumbnail"),
]
