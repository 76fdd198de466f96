"""`manage.py healthcheck`: exit 0 when this host's process could do its work, 1 otherwise.

The container healthcheck of the worker and the scheduler (compose.yaml), which serve no
`/readyz`: the same checks (PostgreSQL, migrations, Redis, storage; apps/common/health.py),
one line naming each outcome, the reasons only in the log.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.common.health import readiness


class Command(BaseCommand):
    help = "Check PostgreSQL, migrations, Redis and storage as /readyz does; exit 1 if any fails."

    def handle(self, *args: Any, **options: Any) -> None:
        results = readiness()
        line = " ".join(f"{name}={outcome}" for name, outcome in results.items())
        if any(outcome != "ok" for outcome in results.values()):
            raise CommandError(f"not ready: {line}")
        self.stdout.write(f"ready: {line}")
