from django.apps import AppConfig
from django.conf import settings


class OperatorsConfig(AppConfig):
    name = "apps.operators"
    label = "operators"
    verbose_name = "Operator console"

    def ready(self) -> None:
        # apps.common's scheduler may not import the slices above it: this one registers its job.
        from apps.common.scheduler import EveryJob, scheduler_register

        def refresh_stats() -> None:
            from apps.operators.tasks import operators_refresh_stats_all

            operators_refresh_stats_all.send()

        scheduler_register(
            EveryJob("agency-stats-refresh", settings.AGENCY_STATS_REFRESH_SECONDS, refresh_stats)
        )
