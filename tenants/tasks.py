"""Agencies' periodic upkeep, run by workers."""

from __future__ import annotations

import dramatiq
from django_tenants.utils import schema_context

from tenants.db import connection
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import current_agency
from tenants.retention import agency_purge_expired, purge_expired_agencies


@dramatiq.actor(queue_name="maintenance", tenant_free=True, max_retries=3)
def tenants_purge_expired_all() -> None:
    """Send each agency's retention run as a message of its own: one agency's failure is retried
    alone, and no message grows with the number of agencies."""
    for agency in purge_expired_agencies():
        message = tenants_purge_expired.message()
        message.options[SCHEMA_OPTION] = agency.schema_name
        tenants_purge_expired.broker.enqueue(message)
    connection.set_schema_to_public()


# Suspended agencies keep their retention too.
@dramatiq.actor(queue_name="maintenance", inactive_agency_ok=True, max_retries=3)
def tenants_purge_expired() -> None:
    agency = current_agency()
    agency_purge_expired(agency=agency)
    from apps.api.uploads import uploads_abandon

    with schema_context(agency.schema_name):  # API uploads not finished within 24 hours
        uploads_abandon()
