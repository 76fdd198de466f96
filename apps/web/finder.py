""" "Find my agency": email someone the sign-in addresses of every agency they belong to.

How agencies are found: by looking in each active agency's own schema, not in a public index.
Users live in their agency's schema and are created, invited, renamed and deactivated by code
all over the project; an index (email hash → agency) would have to follow every one of those
changes and would drift the first time one forgot. Instead one query per batch of agencies
asks every schema at once (`SELECT ... UNION ALL ...`, each branch an index lookup on
lower(email)), so the cost is a few queries even with thousands of agencies.

No leaks: the page answers the same whatever the address, and the lookup and the email run in a
background job (apps.web.tasks), so the response takes the same time too; only the mailbox's
owner learns which agencies use it.
"""

from __future__ import annotations

import logging
from itertools import batched

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.common.sql import quote_ident
from apps.users.models import User
from tenants.db import connection
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)

_BATCH = 200


def agencies_for_email(email: str) -> list[Agency]:
    """Active agencies in which `email` is an active user, by name."""
    email = email.strip().lower()
    agencies = list(Agency.objects.filter(status=AgencyStatus.ACTIVE).exclude(schema_name="public"))
    q = quote_ident
    table = User._meta.db_table
    found: set[int] = set()
    with connection.cursor() as cursor:
        for batch in batched(agencies, _BATCH):
            branches = [
                f"SELECT %s WHERE EXISTS (SELECT 1 FROM {q(agency.schema_name)}.{q(table)} u "  # noqa: S608 (names from our rows, quoted)
                "WHERE lower(u.email) = %s AND u.is_active AND u.deleted_at IS NULL)"
                for agency in batch
            ]
            params = [value for agency in batch for value in (agency.pk, email)]
            cursor.execute(" UNION ALL ".join(branches), params)
            found.update(row[0] for row in cursor.fetchall())
    return sorted((a for a in agencies if a.pk in found), key=lambda a: (a.name.lower(), a.slug))


def agency_finder_email_send(*, email: str) -> int:
    """Email `email` the sign-in address of each agency it belongs to; send nothing when there
    are none. Returns the number of agencies listed."""
    agencies = agencies_for_email(email)
    if not agencies:
        return 0
    login_path = reverse("login", urlconf=settings.ROOT_URLCONF)
    context = {
        "email": email,
        "agencies": [{"name": a.name, "url": f"{a.url.rstrip('/')}{login_path}"} for a in agencies],
    }
    send_mail(
        subject="Your Postline sign-in addresses",
        message=render_to_string("web/find_agency_email.html", context),
        from_email=None,
        recipient_list=[email],
    )
    logger.info("Sent the agency finder email listing %d agencies", len(agencies))
    return len(agencies)
