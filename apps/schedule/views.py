"""The agency's dashboard and its calendar (month and week, in the person's own time zone)."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import Perm, accounts_with, may_connect
from apps.accounts.posting_limits import DAILY_CAP, app_posting_limit
from apps.common.http import HtmxHttpRequest
from apps.posts.models import PostStatus
from apps.posts.selectors import get_post_for_user, posts_awaiting_review
from apps.posts.services import PostStateError, post_schedule
from apps.schedule import selectors
from apps.schedule.periods import (
    MONTH_CELL_POSTS,
    VIEWS,
    Period,
    lay_out,
    parse_date,
    parse_view,
    weeks_of,
    zone_for,
)
from apps.users.models import User


@require_GET
@login_required
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    now = timezone.now()
    health = selectors.account_health(user=user, now=now)
    return render(
        request,
        "schedule/dashboard.html",
        {
            "agency": request.tenant,  # type: ignore[attr-defined]
            "time_zone": zone_for(user.time_zone).key,
            "upcoming": selectors.posts_upcoming(user=user),
            "attention": selectors.posts_needing_attention(user=user, now=now),
            "reconnect": health.reconnect,
            "near_cap": health.near_cap,
            "stopped": health.stopped,
            "app_limit": app_posting_limit(now=now),
            "has_accounts": bool(health) or accounts_with(user).exists(),
            "reviewed": selectors.posts_reviewed_for_author(user=user, now=now),
            "awaiting_review": posts_awaiting_review(user).count(),
            "daily_cap": DAILY_CAP,
            # Asked only when the page offers to write a post (templates call callables).
            "may_draft": accounts_with(user, Perm.DRAFT).exists,
            "may_connect": may_connect(user),
        },
    )


def _calendar_url(view: str, day: dt.date) -> str:
    return f"{reverse('schedule:calendar')}?{urlencode({'view': view, 'date': day.isoformat()})}"


@require_GET
@login_required
def calendar(request: HtmxHttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    zone = zone_for(user.time_zone)
    today = timezone.now().astimezone(zone).date()
    period = Period.around(
        parse_view(request.GET.get("view")), parse_date(request.GET.get("date"), today), zone
    )
    if period.view == "month":  # a few posts a day and "+N more", counted in SQL
        posts = selectors.posts_first_of_each_day(
            user=user, start=period.start, end=period.end, zone=zone, per_day=MONTH_CELL_POSTS
        )
    else:
        posts = selectors.posts_scheduled_between(user=user, start=period.start, end=period.end)
    # Moving a post and writing one both take Perm.DRAFT: a reviewer gets neither offered.
    draft_account_ids = set(accounts_with(user, Perm.DRAFT).values_list("pk", flat=True))
    days = lay_out(period, posts, today, draft_account_ids)
    post_count = sum(len(day.entries) if day.total is None else day.total for day in days)
    return render(
        request,
        "schedule/calendar.html",
        {
            "period": period,
            "time_zone": zone.key,
            "days": days,
            "weeks": weeks_of(days),
            "today": today,
            "links": {
                "previous": _calendar_url(period.view, period.previous),
                "next": _calendar_url(period.view, period.next),
                "today": _calendar_url(period.view, today),
                **{view: _calendar_url(view, period.anchor) for view in VIEWS},
            },
            "post_count": post_count,
            "may_draft": bool(draft_account_ids),
        },
    )


@require_POST
@login_required
def move(request: HtmxHttpRequest) -> HttpResponse:
    """Move a post to another day at the same local time (the calendar's drag and drop).

    A plain form post, then back to the calendar with a message saying what happened."""
    user: User = request.user  # type: ignore[assignment]
    zone = zone_for(user.time_zone)
    today = timezone.now().astimezone(zone).date()
    view = parse_view(request.POST.get("view"))
    back = redirect(_calendar_url(view, parse_date(request.POST.get("anchor"), today)))
    try:
        post_id = uuid.UUID(request.POST.get("post", ""))
    except ValueError:
        raise Http404("No such post.") from None
    post = get_post_for_user(user, post_id, Perm.DRAFT)
    day = parse_date(request.POST.get("date"), dt.date.min)
    if day == dt.date.min or post.scheduled_at is None:
        messages.error(request, "Drop the post on a day of the calendar to move it.")
        return back
    if post.status != PostStatus.SCHEDULED:
        # Rescheduling a draft or a post waiting for approval here would schedule it.
        messages.error(
            request,
            f"“{post}” was not moved: it is {post.get_status_display().lower()}; "
            "only scheduled posts can be moved on the calendar. Open the post to change it.",
        )
        return back
    local_time = post.scheduled_at.astimezone(zone).time()
    when = dt.datetime.combine(day, local_time, tzinfo=zone)
    try:
        moved = post_schedule(
            post=post,
            scheduled_at=when,
            time_zone=zone.key,
            by=user,
            request=request,
            only_from=frozenset({PostStatus.SCHEDULED}),
        )
    except PostStateError as exc:
        messages.error(request, f"“{post}” was not moved: {exc}")
        return back
    moved_to = f"{date_format(when.astimezone(zone), 'l j F, H:i')} ({zone.key})"
    if moved.status == PostStatus.PENDING_APPROVAL:
        messages.success(request, f"Moved “{post}” to {moved_to} and sent it for approval again.")
    else:
        messages.success(request, f"Moved “{post}” to {moved_to}.")
    return back
