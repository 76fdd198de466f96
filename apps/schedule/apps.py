from django.apps import AppConfig


class ScheduleConfig(AppConfig):
    name = "apps.schedule"
    label = "schedule"
    verbose_name = "Calendar"
