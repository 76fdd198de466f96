"""Reading the audit log: the filtered entries, and what the filters may choose from."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from apps.accounts.models import TikTokAccount, account_label
from apps.audit.models import AuditLog
from apps.common.pagination import Keyset
from apps.posts.models import Post
from apps.users.models import User

# Newest first; entries of the same instant by id, so that pages never tie (apps.common.pagination).
AUDIT_ORDER = Keyset(("created_at", "id"), descending=True)
# The actor filter's value for entries nobody signed in made (the system, or a signed-out visitor).
SYSTEM = "system"


@dataclass(frozen=True)
class AuditFilters:
    """What to show: `actor` is "" (everyone), SYSTEM or a user's id; `since` is inclusive,
    `before` exclusive (both aware datetimes)."""

    actor: str = ""
    action: str = ""
    account_id: uuid.UUID | None = None
    since: dt.datetime | None = None
    before: dt.datetime | None = None


def audit_entries(filters: AuditFilters) -> QuerySet[AuditLog]:
    """The matching entries in AUDIT_ORDER (each filter has an index that leads with it, then
    follows that order)."""
    entries = AuditLog.objects.all()
    if filters.actor == SYSTEM:
        entries = entries.filter(actor__isnull=True)
    elif filters.actor:
        entries = entries.filter(actor_id=uuid.UUID(filters.actor))
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.account_id is not None:
        entries = entries.filter(account_id=filters.account_id)
    if filters.since is not None:
        entries = entries.filter(created_at__gte=filters.since)
    if filters.before is not None:
        entries = entries.filter(created_at__lt=filters.before)
    return entries.order_by(*AUDIT_ORDER.order())


def audit_actions_present() -> list[str]:
    """Every action name the log holds, in one index walk per name rather than a scan of the log
    (a "loose index scan" over audit_by_action_idx; PostgreSQL does not plan one for DISTINCT)."""
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE present(action) AS (
                (SELECT action FROM {table} ORDER BY action LIMIT 1)
                UNION ALL
                SELECT (SELECT action FROM {table} WHERE action > present.action ORDER BY action LIMIT 1)
                FROM present WHERE present.action IS NOT NULL
            )
            SELECT action FROM present WHERE action IS NOT NULL
            """  # noqa: S608 (the table name is ours, quoted; nothing comes from the request)
        )
        return [row[0] for row in cursor.fetchall()]


def audit_actors() -> list[tuple[str, str]]:
    """Everyone who ever belonged to the agency, deactivated people included, as (id, label):
    their address, marked when they are deactivated. Read as values, not users: a hundred
    people built whole cost more than the rest of the filters together."""
    people = User.all_objects.order_by("email").values_list("pk", "email", "deleted_at")
    return [(str(pk), f"{email} (deactivated)" if gone else email) for pk, email, gone in people]


def audit_accounts() -> list[tuple[str, str]]:
    """Every TikTok account the agency ever had, removed ones included, as (id, label): what
    names it (the filter's and the changes' labels), marked when removed; nothing else read (no
    token decrypted)."""
    accounts = TikTokAccount.all_objects.order_by("username", "display_name", "open_id").values_list(
        "pk", "username", "display_name", "open_id", "deleted_at"
    )
    return [
        (str(pk), f"{account_label(*names)} (removed)" if gone else account_label(*names))
        for pk, *names, gone in accounts
    ]


def existing_post_ids(ids: Iterable[str]) -> set[str]:
    """Which of these posts still exist (so the page links only to those), in one query."""
    valid = set()
    for value in ids:
        try:
            valid.add(uuid.UUID(value))
        except ValueError:
            continue
    if not valid:
        return set()
    return {str(pk) for pk in Post.objects.filter(pk__in=valid).values_list("pk", flat=True)}
