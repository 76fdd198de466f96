from django.apps import AppConfig


class TeamConfig(AppConfig):
    name = "apps.team"
    label = "team"
    verbose_name = "Team"
