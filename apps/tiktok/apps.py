from django.apps import AppConfig


class TikTokConfig(AppConfig):
    name = "apps.tiktok"
    label = "tiktok"
    verbose_name = "TikTok API"

    def ready(self) -> None:
        from apps.tiktok import checks  # noqa: F401  (registers the system checks)
