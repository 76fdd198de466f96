from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_list, name="list"),
    path("export.csv", views.audit_export, name="export"),
    path("exports/", views.audit_exports, name="exports"),
    path("exports/<uuid:pk>/download/", views.audit_export_download, name="export_download"),
]
