from django.urls import path

from apps.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.report_page, name="page"),
    path("report.csv", views.report_csv, name="csv"),
    path("report.pdf", views.report_pdf, name="pdf"),
]
