from django.apps import AppConfig


class FakeTiktokConfig(AppConfig):
    name = "apps.fake_tiktok"
    label = "fake_tiktok"
    verbose_name = "Fake TikTok (development)"
