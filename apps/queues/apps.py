from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "apps.queues"
    label = "queues"
    verbose_name = "Posting queues"

    def ready(self) -> None:
        from apps.posts.queueing import queue_register
        from apps.queues.services import queue_reserve_next

        queue_register(queue_reserve_next)
