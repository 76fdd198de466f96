"""Background jobs of the team. Thin: ids in, services do the work."""

from __future__ import annotations

import dramatiq

from apps.team.invitation_email import invitation_email_send


@dramatiq.actor(queue_name="team", max_retries=3)
def team_send_invitation_email(invitation_id: str) -> None:
    """Email the invitation a fresh link (the message's agency; nothing if it closed meanwhile)."""
    invitation_email_send(invitation_id=invitation_id)
