"""Password reset email, sent by a worker.

The page answers at once, whatever the address; the look-up and the email happen in a job
(apps.web.tasks) in the agency's schema, so neither the answer nor its timing tells whether
the address belongs to anyone here.
"""

from __future__ import annotations

from apps.web.forms import AgencyPasswordResetForm
from tenants.models import current_agency


def password_reset_email_send(*, email: str) -> int:
    """Email a reset link to each active user of the current agency with `email`; returns how
    many were sent (0 for an unknown address: nothing is sent)."""
    agency = current_agency()
    form = AgencyPasswordResetForm(data={"email": email})
    if not form.is_valid():
        return 0
    users = list(form.get_users(form.cleaned_data["email"]))
    if not users:
        return 0
    form.save(
        domain_override=agency.primary_host,
        subject_template_name="registration/password_reset_subject.txt",
        email_template_name="registration/password_reset_email.html",
        # The link names the agency's configured address, never a request's Host header.
        extra_email_context={"agency": agency, "agency_url": agency.url.rstrip("/")},
    )
    return len(users)
