from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    label = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        # The broker must exist before any module declares an actor.
        from config.broker import setup_broker

        setup_broker()
