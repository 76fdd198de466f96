from django.apps import AppConfig
from django.conf import settings


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Agencies"

    def ready(self) -> None:
        from apps.common.scheduler import DailyJob, scheduler_register

        def purge_expired() -> None:
            from tenants.tasks import tenants_purge_expired_all

            tenants_purge_expired_all.send()

        scheduler_register(DailyJob("purge-expired", settings.RETENTION_HOUR_UTC, purge_expired))
