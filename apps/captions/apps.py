from django.apps import AppConfig


class CaptionsConfig(AppConfig):
    name = "apps.captions"
    label = "captions"
    verbose_name = "Caption templates and hashtag groups"
