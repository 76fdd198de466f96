"""Background jobs of the web pages. Thin: values in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.web.email_verification import email_verification_send, unverified_agencies_sweep
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


@dramatiq.actor(queue_name="web", max_retries=3)
def web_send_email_verification(user_id: str) -> None:
    """Email the owner `user_id` of the message's agency a new link to confirm their address."""
    email_verification_send(user_id=user_id)


@dramatiq.actor(queue_name="web", tenant_free=True, max_retries=3)
def web_remove_unverified_agencies() -> None:
    """Remind, then delete and purge, the signups whose owner does not confirm their address
    (the scheduler's)."""
    unverified_agencies_sweep()
