from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "apps.reviews"
    label = "reviews"
    verbose_name = "Client reviews"

    def ready(self) -> None:
        # The publishing worker (a floor below) cannot import this app: it asks the checks
        # registered with it before each init, and a client's approval binds the content here.
        from apps.publishing.checks import publish_check_register
        from apps.reviews.selectors import consent_refusal

        publish_check_register(consent_refusal)
