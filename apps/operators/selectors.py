"""What the operators' console reads: public tables and Redis only, never an agency's schema."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from functools import cache

from django.db.models import Count, Min, QuerySet, Sum
from django.utils import timezone

from apps.common.metrics import broker_queue_state, publish_lateness_quantile
from apps.common.pagination import Keyset
from apps.operators.models import AgencyStats
from apps.publishing.models import DueJob, JobKind
from config.tasks import TASK_MODULES
from tenants.models import Agency, AgencyStatus

# The console's list: by address, which is unique (and indexed), so pages never tie.
AGENCY_ORDER = Keyset(("slug",))


def agencies_for_console(*, status: str = "") -> QuerySet[Agency]:
    """Agencies with their figures row, in one query a page."""
    agencies = Agency.objects.exclude(schema_name="public").select_related("stats")
    if status in AgencyStatus.values:
        agencies = agencies.filter(status=status)
    return agencies


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int
    dead_letters: int


@dataclass(frozen=True)
class PlatformPanel:
    due_posts: int
    queues: list[QueueState]
    dead_letters: int
    lateness_p99_seconds: float | None
    published_last_hour: int
    tokens_expiring: int
    suspended: int
    pending_deletion: int
    oldest_refresh: dt.datetime | None


@cache
def _every_queue_declared() -> None:
    """A web process declares only the queues of the actors it imported; the panel lists every
    queue the workers consume."""
    for module in TASK_MODULES:
        importlib.import_module(module)


def platform_panel(*, now: dt.datetime | None = None) -> PlatformPanel:
    """The platform at a glance: three public queries and two Redis round trips."""
    now = now or timezone.now()
    due = DueJob.objects.filter(kind=JobKind.PUBLISH, due_at__lte=now).count()
    statuses = dict(
        Agency.objects.exclude(schema_name="public")
        .filter(status__in=[AgencyStatus.SUSPENDED, AgencyStatus.DELETED])
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )

    figures = AgencyStats.objects.aggregate(tokens=Sum("tokens_expiring"), oldest=Min("refreshed_at"))
    _every_queue_declared()
    queues = [QueueState(name, depth, dead) for name, depth, dead in broker_queue_state()]
    p99, published = publish_lateness_quantile(0.99)
    return PlatformPanel(
        due_posts=due,
        queues=queues,
        dead_letters=sum(q.dead_letters for q in queues),
        lateness_p99_seconds=p99,
        published_last_hour=published,
        tokens_expiring=figures["tokens"] or 0,
        suspended=statuses.get(AgencyStatus.SUSPENDED, 0),
        pending_deletion=statuses.get(AgencyStatus.DELETED, 0),
        oldest_refresh=figures["oldest"],
    )
