"""Background jobs of the operators' console. Thin: ids in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.operators.mail import owners_email_send
from apps.operators.stats import agencies_to_refresh, agency_stats_refresh
from tenants.db import connection
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import current_agency


@dramatiq.actor(queue_name="web", tenant_free=True, inactive_agency_ok=True, max_retries=3)
def operators_email_owners(entry_id: str) -> None:
    """Email the owners what an operator did to their agency, with the reason."""
    owners_email_send(entry_id=entry_id)


@dramatiq.actor(queue_name="maintenance", tenant_free=True, max_retries=3)
def operators_refresh_stats_all() -> None:
    """Send each agency's refresh as a message of its own: one agency's failure is retried alone,
    and no message grows with the number of agencies (the scheduler's)."""
    for agency in agencies_to_refresh():
        message = operators_refresh_stats.message()
        message.options[SCHEMA_OPTION] = agency.schema_name
        operators_refresh_stats.broker.enqueue(message)
    connection.set_schema_to_public()


# Suspended and deleted agencies are in the console too.
@dramatiq.actor(queue_name="maintenance", inactive_agency_ok=True, max_retries=3)
def operators_refresh_stats() -> None:
    agency = current_agency()
    connection.set_schema_to_public()
    agency_stats_refresh(agency=agency)
