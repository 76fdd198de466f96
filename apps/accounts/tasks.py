"""Background jobs for connected accounts. Thin: ids in, services do the work."""

from __future__ import annotations

import logging

import dramatiq
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.services import AccountNeedsReauth, AnalyticsScopesMissing, account_sync_stats
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


@dramatiq.actor(queue_name="stats", tenant_free=True, max_retries=3)
def accounts_sync_all_agencies() -> None:
    """Queue today's snapshot of every active account, agency by agency."""
    for agency in Agency.objects.filter(status=AgencyStatus.ACTIVE).only("schema_name"):
        with schema_context(agency.schema_name):
            ids = list(TikTokAccount.objects.filter(status=AccountStatus.ACTIVE).values_list("pk", flat=True))
        for account_id in ids:
            message = accounts_sync_stats.message(str(account_id))
            message.options[SCHEMA_OPTION] = agency.schema_name
            accounts_sync_stats.broker.enqueue(message)
    connection.set_schema_to_public()
