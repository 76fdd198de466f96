from django.urls import path

from apps.brand import views

app_name = "brand"

urlpatterns = [
    path("brand.css", views.stylesheet, name="stylesheet"),
    path("logo/<str:token>/", views.logo, name="logo"),
]
