"""Background jobs for connected accounts. Thin: ids in, services do the work."""

from __future__ import annotations

import hashlib
import logging

import dramatiq
from django.conf import settings
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.services import (
    AccountNeedsReauth,
    AnalyticsScopesMissing,
    account_sync_stats,
    accounts_revoke_all,
)
from tenants.db import connection
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="stats", max_retries=5, min_backoff=30_000, max_backoff=3_600_000)
def accounts_sync_stats(account_id: str) -> None:
    account = TikTokAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE).first()
    if account is None:
        return
    try:
        account_sync_stats(account=account)
    except AccountNeedsReauth as exc:
        logger.info("Stats of account %s skipped: %s", account_id, exc.reason)
    except AnalyticsScopesMissing as exc:
        logger.info("Stats of account %s skipped: %s", account_id, exc)


def sync_offset_seconds(schema_name: str, account_id: str) -> int:
    """When in the day's sync window an account's snapshot is taken: the same moment every day
    (snapshots a day apart), spread evenly over the window by a hash of the account."""
    window = settings.STATS_SYNC_SPREAD_SECONDS
    if window <= 0:
        return 0
    digest = hashlib.sha256(f"{schema_name}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % window


@dramatiq.actor(queue_name="stats", tenant_free=True, max_retries=3)
def accounts_sync_all_agencies() -> None:
    """Queue today's snapshot of every active account, agency by agency, each delayed to its own
    moment in STATS_SYNC_SPREAD_SECONDS: TikTok's Display API allows the app about 600 calls a
    minute, which every agency's accounts started at once would exceed many times over."""
    for agency in Agency.objects.filter(status=AgencyStatus.ACTIVE).only("schema_name"):
        with schema_context(agency.schema_name):
            ids = list(TikTokAccount.objects.filter(status=AccountStatus.ACTIVE).values_list("pk", flat=True))
        for account_id in ids:
            message = accounts_sync_stats.message(str(account_id))
            message.options[SCHEMA_OPTION] = agency.schema_name
            delay = sync_offset_seconds(agency.schema_name, str(account_id)) * 1000
            accounts_sync_stats.broker.enqueue(message, delay=delay or None)
    connection.set_schema_to_public()


# Offboarding: runs for a deleted agency (the tenant middleware lets it through), retried with
# backoff while TikTok cannot be reached. Skipped if the agency was reactivated meanwhile.
@dramatiq.actor(
    queue_name="accounts", inactive_agency_ok=True, max_retries=8, min_backoff=15_000, max_backoff=900_000
)
def accounts_revoke_for_deleted_agency() -> None:
    agency = Agency.objects.filter(schema_name=connection.schema_name)
    status = agency.values_list("status", flat=True).first()
    if status != AgencyStatus.DELETED:
        logger.info("Tokens of %s kept: the agency is %s", connection.schema_name, status)
        return
    revoked = accounts_revoke_all(reason="The agency was deleted; its TikTok access was revoked.")
    logger.info("Agency %s deleted: %d account(s) revoked at TikTok", connection.schema_name, revoked)
