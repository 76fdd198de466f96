"""Background jobs of the audit log. Thin: ids in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.audit.exports import audit_export_build


@dramatiq.actor(queue_name="exports", max_retries=0, time_limit=6 * 60 * 60 * 1000)
def audit_exports_build(export_id: str) -> None:
    """Write a large audit log export someone asked for (the message's agency)."""
    audit_export_build(export_id)
