from django.urls import path

from apps.captions import views

app_name = "captions"

urlpatterns = [
    path("", views.snippet_list, name="list"),
    path("<uuid:pk>/", views.snippet_edit, name="edit"),
    path("<uuid:pk>/delete/", views.snippet_delete_view, name="delete"),
]
