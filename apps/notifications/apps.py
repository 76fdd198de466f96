from django.apps import AppConfig
from django.conf import settings


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # The slices below this one announce events through apps.common.outbox and run their
        # periodic jobs through apps.common.scheduler; neither may import this app, so it
        # registers itself with both here.
        from apps.common.outbox import outbox_register
        from apps.common.scheduler import EveryJob, scheduler_register
        from apps.notifications.services import notification_write
        from apps.notifications.tasks import notifications_sweep

        def sweep() -> None:
            notifications_sweep.send()

        outbox_register(notification_write)
        scheduler_register(EveryJob("notifications-sweep", settings.NOTIFICATIONS_SWEEP_SECONDS, sweep))
