"""The analytics page: an account's follower growth and its videos' views and likes."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.accounts.models import AccountStatus, without_secrets
from apps.accounts.permissions import accounts_with
from apps.analytics.selectors import PERIODS, account_analytics, parse_period
from apps.common.http import HtmxHttpRequest
from apps.users.models import User
from tenants.replicas import heavy_reads


@require_GET
@login_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    accounts = list(without_secrets(accounts_with(user)))  # tokens neither read nor decrypted
    days = parse_period(request.GET.get("days"))
    # By default the first account that still works: a lapsed one has stopped collecting stats.
    account = next(
        (a for a in accounts if a.status == AccountStatus.ACTIVE), accounts[0] if accounts else None
    )
    if request.GET.get("account"):
        # Only an account from this user's own list: anything else is not found.
        try:
            wanted = uuid.UUID(request.GET["account"])
        except ValueError:
            raise Http404("No such account.") from None
        account = next((candidate for candidate in accounts if candidate.pk == wanted), None)
        if account is None:
            raise Http404("No such account.")
    # Read from the replica when there is one that keeps up (tenants.replicas).
    read = heavy_reads()
    analytics = (
        account_analytics(
            user=user, account=account, days=days, today=timezone.now().date(), using=read.alias
        )
        if account is not None
        else None
    )
    return render(
        request,
        "analytics/overview.html",
        {
            "accounts": accounts,
            "account": account,
            "days": days,
            "periods": PERIODS,
            "analytics": analytics,
            "behind_seconds": round(read.behind_seconds) if read.lagging else 0,
        },
    )
