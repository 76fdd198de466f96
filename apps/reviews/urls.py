from django.urls import path

from apps.reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.links, name="links"),
    path("links/<uuid:link_id>/revoke/", views.link_revoke, name="revoke"),
    path("consent.csv", views.consent_export, name="consent_export"),
    path("mine/", views.my_reviews, name="mine"),
    path("mine/<uuid:post_id>/decide/", views.my_decide, name="decide"),
]
