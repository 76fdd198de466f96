from django.urls import path

from apps.exports import views

app_name = "exports"

urlpatterns = [
    path("", views.export_page, name="page"),
    path("<uuid:pk>/", views.export_row, name="row"),
    path("<uuid:pk>/download/", views.export_download, name="download"),
]
