from django.apps import AppConfig


class TikTokConfig(AppConfig):
    name = "apps.tiktok"
    label = "tiktok"
    verbose_name = "TikTok API"
