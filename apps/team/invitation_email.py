"""The invitation email: a fresh link for an open invitation, made and sent by a worker."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.brand.selectors import brand_of
from apps.team.models import Invitation
from tenants.models import current_agency

INVITATION_DAYS = 7


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_link(raw: str) -> str:
    """The link to accept an invitation, on the agency's own address (never the request's Host)."""
    path = reverse("team:join", kwargs={"token": raw})
    agency = current_agency()
    return f"{agency.url.rstrip('/')}{path}"


def invitation_email_send(*, invitation_id: Any) -> bool:
    """Email the invitation a fresh link (run by a worker: apps.team.tasks).

    The token is made here, not by the request: it exists only in the email, never in a queue
    message. Every send replaces the previous link. Returns False, sending nothing, when the
    invitation has been accepted or revoked meanwhile.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("invited_by", "updated_by")
            .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
            .first()
        )
        if invitation is None:
            return False
        raw = secrets.token_urlsafe(32)
        invitation.token_hash = token_hash(raw)
        invitation.save(update_fields=["token_hash", "updated_at"])
    inviter = invitation.updated_by or invitation.invited_by
    agency = current_agency()
    inviter_name = inviter.get_full_name() if inviter is not None else agency.name
    context = {
        "agency": agency,
        "invitation": invitation,
        "inviter": inviter_name,
        "link": invitation_link(raw),
        "days": INVITATION_DAYS,
        "brand": brand_of(agency),
    }
    message = EmailMultiAlternatives(
        subject=f"{inviter_name} invited you to {agency.name} on Postline",
        body=render_to_string("team/invitation_email.txt", context),
        to=[invitation.email],
    )
    # The HTML part carries the agency's brand: a client's first sight of it.
    message.attach_alternative(render_to_string("team/invitation_email.html", context), "text/html")
    message.send()
    return True
