"""The root domain's public pages."""

from django.urls import path
from django.views.generic import RedirectView

from apps.web import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("find/", views.find_agency, name="find_agency"),
    path("find/sent/", views.find_agency_sent, name="find_agency_sent"),
    # People type the root domain's /login/: signing in happens on the agency's own address.
    path("login/", RedirectView.as_view(pattern_name="find_agency"), name="public_login"),
]
