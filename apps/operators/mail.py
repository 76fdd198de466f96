"""Telling an agency's owners what an operator did to their agency, and why."""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django_tenants.utils import schema_context

from apps.operators.models import OperatorAuditLog
from apps.users.models import Role, User
from tenants.models import Agency

logger = logging.getLogger(__name__)

SUBJECTS = {
    "agency.suspended": "{name} is suspended on Postline",
    "agency.reactivated": "{name} is active again on Postline",
    "agency.deleted": "{name} is deleted from Postline",
}


def owners_email_send(*, entry_id: Any) -> int:
    """Email the active owners of the agency an operators' audit entry is about: what was done and
    the operator's reason (run by a worker: apps.operators.tasks). Returns how many were emailed;
    none when the agency has been purged meanwhile."""
    entry = OperatorAuditLog.objects.filter(pk=entry_id).first()
    if entry is None or entry.action not in SUBJECTS:
        return 0
    agency = Agency.objects.filter(pk=entry.agency_ref).first()
    if agency is None:
        return 0
    with schema_context(agency.schema_name):
        owners = list(
            User.objects.filter(role=Role.OWNER, is_active=True)
            .order_by("email")
            .values_list("email", flat=True)
        )
    if not owners:
        logger.warning("Agency %s has no active owner to tell of %s", agency.slug, entry.action)
        return 0
    send_mail(
        subject=SUBJECTS[entry.action].format(name=agency.name),
        message=render_to_string("operators/status_email.txt", {"agency": agency, "entry": entry}),
        from_email=None,
        recipient_list=owners,
    )
    return len(owners)
