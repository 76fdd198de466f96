"""Background jobs of the web pages. Thin: values in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.web.finder import agency_finder_email_send
from apps.web.password_reset import password_reset_email_send


@dramatiq.actor(queue_name="web", tenant_free=True, max_retries=3)
def web_send_agency_finder_email(email: str) -> None:
    """Look the address up in every agency and email it its sign-in addresses (apps.web.finder)."""
    agency_finder_email_send(email=email)


@dramatiq.actor(queue_name="web", max_retries=3)
def web_send_password_reset_email(email: str) -> None:
    """Email a reset link if the address belongs to someone in the message's agency."""
    password_reset_email_send(email=email)
