from django.urls import path

from apps.team import views

app_name = "team"

urlpatterns = [
    path("", views.team_list, name="list"),
    path("invite/", views.invite, name="invite"),
    path("invitations/<uuid:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("invitations/<uuid:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("members/<uuid:pk>/", views.member_detail, name="member"),
    path("members/<uuid:pk>/role/", views.member_role, name="member_role"),
    path("members/<uuid:pk>/access/", views.member_access, name="member_access"),
    path("members/<uuid:pk>/deactivate/", views.member_deactivate, name="member_deactivate"),
    path("members/<uuid:pk>/transfer/", views.ownership_transfer, name="ownership_transfer"),
    path("join/<str:token>/", views.join, name="join"),
]
