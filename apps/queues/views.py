"""The posting queue pages: which accounts have queues, and one account's queue (its slots, its
zone, the coming slots with their posts, reordered by drag or by the Earlier / Later buttons)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import SECRET_FIELDS, TikTokAccount
from apps.accounts.permissions import Perm, account_perms, accounts_with, get_account_for_user
from apps.common.http import HtmxHttpRequest
from apps.posts.selectors import get_post_for_user
from apps.posts.services import PostStateError
from apps.queues.forms import SlotForm, ZoneForm
from apps.queues.models import QueueSlot
from apps.queues.services import (
    QueueError,
    queue_move,
    queue_set_time_zone,
    queue_upcoming,
    queue_zone,
    slot_add,
    slot_remove,
)
from apps.users.models import User

WEEKS_SHOWN = 2


def _user(request: HtmxHttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@require_GET
@login_required
def queue_index(request: HtmxHttpRequest) -> HttpResponse:
    accounts = accounts_with(_user(request)).defer(*SECRET_FIELDS).annotate(slot_count=Count("queue_slots"))
    return render(request, "queues/index.html", {"accounts": list(accounts)})


def _page(
    request: HtmxHttpRequest,
    account: TikTokAccount,
    *,
    slot_form: SlotForm | None = None,
    zone_form: ZoneForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    perms = account_perms(user, account)
    zone = queue_zone(account)
    upcoming = queue_upcoming(account=account, now=timezone.now(), weeks=WEEKS_SHOWN)
    rows: list[dict[str, Any]] = []
    for index, entry in enumerate(upcoming):
        rows.append(
            {
                "at": entry.at,
                "slot": entry.slot,
                "post": entry.post,
                "earlier": upcoming[index - 1].at if index > 0 else None,
                "later": upcoming[index + 1].at if index + 1 < len(upcoming) else None,
            }
        )
    context = {
        "account": account,
        "time_zone": zone.key,
        "user_time_zone": user.time_zone or "UTC",
        "slots": list(QueueSlot.objects.filter(account=account)),
        "rows": rows,
        "weeks": WEEKS_SHOWN,
        "may_edit_slots": Perm.PUBLISH in perms,
        "may_move": Perm.DRAFT in perms,
        "slot_form": slot_form or SlotForm(),
        "zone_form": zone_form or ZoneForm(initial={"time_zone": zone.key}),
    }
    return render(request, "queues/queue.html", context, status=status)


@require_GET
@login_required
def queue_page(request: HtmxHttpRequest, account_id: uuid.UUID) -> HttpResponse:
    return _page(request, get_account_for_user(_user(request), account_id))


@require_POST
@login_required
def slot_add_view(request: HtmxHttpRequest, account_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    account = get_account_for_user(user, account_id, Perm.PUBLISH)
    form = SlotForm(request.POST)
    if form.is_valid():
        try:
            slot = slot_add(
                account=account,
                weekday=form.cleaned_data["weekday"],
                local_time=form.cleaned_data["local_time"],
                by=user,
                request=request,
            )
        except QueueError as exc:
            form.add_error("local_time", str(exc))
        else:
            messages.success(request, f"Added a slot on {slot} ({queue_zone(account).key}).")
            return redirect("queues:queue", account_id=account.pk)
    return _page(request, account, slot_form=form)


@require_POST
@login_required
def slot_remove_view(request: HtmxHttpRequest, account_id: uuid.UUID, slot_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    account = get_account_for_user(user, account_id, Perm.PUBLISH)
    slot = QueueSlot.objects.filter(account=account, pk=slot_id).first()
    if slot is None:
        raise Http404("No such slot.")
    slot_remove(slot=slot, by=user, request=request)
    messages.success(
        request, f"Removed the slot on {slot}. Posts already scheduled at its times stay scheduled."
    )
    return redirect("queues:queue", account_id=account.pk)


@require_POST
@login_required
def zone_view(request: HtmxHttpRequest, account_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    account = get_account_for_user(user, account_id, Perm.PUBLISH)
    form = ZoneForm(request.POST)
    if not form.is_valid():
        return _page(request, account, zone_form=form)
    queue_set_time_zone(account=account, time_zone=form.cleaned_data["time_zone"], by=user, request=request)
    messages.success(request, f"The queue's slots are now read in {form.cleaned_data['time_zone']}.")
    return redirect("queues:queue", account_id=account.pk)


@require_http_methods(["POST"])
@login_required
def move_view(request: HtmxHttpRequest, account_id: uuid.UUID) -> HttpResponse:
    """Move a post to another slot of the queue, swapping with the post there (a plain form post:
    the Earlier / Later buttons, and the drop of a drag, which fills the same form)."""
    user = _user(request)
    account = get_account_for_user(user, account_id, Perm.DRAFT)
    back = redirect("queues:queue", account_id=account.pk)
    try:
        post_id = uuid.UUID(request.POST.get("post", ""))
    except ValueError:
        raise Http404("No such post.") from None
    post = get_post_for_user(user, post_id, Perm.DRAFT)
    if post.account_id != account.pk:
        raise Http404("No such post.")
    try:
        to = dt.datetime.fromisoformat(request.POST.get("to", ""))
    except ValueError:
        messages.error(request, "Choose one of the queue's slots to move the post to.")
        return back
    if to.tzinfo is None:
        messages.error(request, "Choose one of the queue's slots to move the post to.")
        return back
    try:
        swapped = queue_move(account=account, post=post, to=to, by=user, request=request)
    except (QueueError, PostStateError) as exc:
        messages.error(request, f"“{post}” was not moved: {exc}")
        return back
    zone = queue_zone(account)
    when = f"{date_format(to.astimezone(zone), 'l j F, H:i')} ({zone.key})"
    if swapped is not None:
        messages.success(request, f"Moved “{post}” to {when}; “{swapped}” took its place.")
    else:
        messages.success(request, f"Moved “{post}” to {when}.")
    return back
