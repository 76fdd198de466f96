"""Background jobs of exports. Thin: ids in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.exports.services import export_build


@dramatiq.actor(queue_name="exports", max_retries=0, time_limit=6 * 60 * 60 * 1000)
def exports_build(export_id: str) -> None:
    """Build the archive of an export an owner asked for (the message's agency)."""
    export_build(export_id)
