from django.urls import path

from apps.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.import_start, name="start"),
    path("export/", views.posts_export, name="export"),
    path("<uuid:pk>/", views.import_page, name="page"),
    path("<uuid:pk>/columns/", views.import_columns, name="columns"),
    path("<uuid:pk>/preview/", views.import_preview, name="preview"),
]
