from django.apps import AppConfig
from django.conf import settings


class WebConfig(AppConfig):
    name = "apps.web"
    label = "web"
    verbose_name = "Web pages"

    def ready(self) -> None:
        # apps.common's scheduler may not import the pages above it: this slice registers its job.
        from apps.common.scheduler import EveryJob, scheduler_register
        from apps.web.tasks import web_remove_unverified_agencies

        def remove_unverified() -> None:
            web_remove_unverified_agencies.send()

        scheduler_register(
            EveryJob(
                "unverified-agencies-remove", settings.UNVERIFIED_AGENCY_SWEEP_SECONDS, remove_unverified
            )
        )
