"""Actors for tests that watch what the worker lets run, and where.

    python -m dramatiq config.worker tests.procs.probe_actors --queues probe

`probe_add_member` stands for any tenant job that writes: it adds a user in whatever schema
the worker entered (in the public schema that user would be an operator).
"""

import dramatiq

from apps.users.models import User


@dramatiq.actor(queue_name="probe", max_retries=3, min_backoff=300, max_backoff=1000)
def probe_add_member(email: str) -> None:
    User.objects.create_user(email)
