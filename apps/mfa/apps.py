from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "apps.mfa"
    label = "mfa"
    verbose_name = "Two-step sign-in"

    def ready(self) -> None:
        from apps.mfa import signals  # noqa: F401  (connects the receivers)
