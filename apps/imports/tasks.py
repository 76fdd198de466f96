"""Background jobs of bulk imports. Thin: ids in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.imports.services import import_run


@dramatiq.actor(queue_name="imports", max_retries=0, time_limit=60 * 60 * 1000)
def imports_run(import_id: str) -> None:
    """Save the good rows of an import someone confirmed (the message's agency)."""
    import_run(import_id)
