"""The notification centre (everyone), preferences (everyone), agency defaults and chat
webhooks (owners and admins; 404 for everyone else)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.common.http import HtmxHttpRequest
from apps.notifications import services
from apps.notifications.forms import ChoicesForm, PreferencesForm, WebhookForm
from apps.notifications.models import (
    CHOOSABLE_KINDS,
    Channel,
    ChatDelivery,
    ChatWebhook,
    Notification,
    PersonSettings,
    Preference,
)
from apps.notifications.outbox import channel_default, enabled_channels
from apps.notifications.outgoing import UnsafeURL
from apps.users.models import User

PAGE_SIZE = 30


# --- The centre ---


@require_GET
@login_required
@never_cache
def notification_list(request: HtmxHttpRequest) -> HttpResponse:
    inbox = Notification.objects.inbox(request.user)
    page = Paginator(inbox, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/list.html",
        {"page": page, "unread": inbox.unread().count()},
    )


@require_GET
@login_required
@never_cache
def bell(request: HtmxHttpRequest) -> HttpResponse:
    """The header's bell: its unread count, polled by htmx."""
    unread = Notification.objects.inbox(request.user).unread().count()
    return render(request, "notifications/_bell.html", {"unread": unread})


@require_POST
@login_required
def open_notification(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Mark it read and go to what it is about."""
    notification = services.get_notification_for_user(request.user, pk)
    services.notification_mark_read(notification=notification, by=request.user)
    target = notification.event.path if notification.event.path.startswith("/") else "/"
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_POST
@login_required
def read_all(request: HtmxHttpRequest) -> HttpResponse:
    count = services.notification_mark_all_read(by=request.user)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} as read.")
    return redirect("notifications:list")


# --- Preferences ---


def _current(user: User) -> dict[tuple[str, str], bool]:
    result: dict[tuple[str, str], bool] = {}
    for kind in CHOOSABLE_KINDS:
        on = enabled_channels([user], kind)[user.pk]
        for channel in Channel.values:
            result[(kind, channel)] = channel in on
    return result


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request: HtmxHttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    row = PersonSettings.objects.filter(user=user).first()
    initial = {
        "quiet_start": row.quiet_start if row else None,
        "quiet_end": row.quiet_end if row else None,
        "digest_enabled": row.digest_enabled if row else False,
        "digest_hour": row.digest_hour if row else 8,
    }
    form = PreferencesForm(request.POST or None, current=_current(user), initial=initial)
    if request.method == "POST" and form.is_valid():
        services.preferences_save(
            user=user,
            choices=form.choices(),
            quiet_start=form.cleaned_data["quiet_start"],
            quiet_end=form.cleaned_data["quiet_end"],
            digest_enabled=form.cleaned_data["digest_enabled"],
            digest_hour=form.cleaned_data["digest_hour"],
        )
        messages.success(request, "Your notification preferences are saved.")
        return redirect("notifications:preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "channels": Channel.choices, "time_zone": user.time_zone},
    )


def _require_admin(user: Any) -> None:
    if not (user.is_authenticated and user.is_active and user.is_agency_admin):
        raise Http404("No such page.")


@require_http_methods(["GET", "POST"])
@login_required
def defaults(request: HtmxHttpRequest) -> HttpResponse:
    _require_admin(request.user)
    current = {(k, c): channel_default(k, c) for k in CHOOSABLE_KINDS for c in Channel.values}
    form = ChoicesForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        services.defaults_save(choices=form.choices(), by=request.user, request=request)  # type: ignore[arg-type]
        messages.success(request, "The agency's defaults are saved; people's own choices still win.")
        return redirect("notifications:defaults")
    customised = Preference.objects.filter(user__isnull=False).values("user").distinct().count()
    return render(
        request,
        "notifications/defaults.html",
        {"form": form, "channels": Channel.choices, "customised": customised},
    )


# --- Chat webhooks ---


def get_webhook_for_user(user: Any, pk: uuid.UUID | str) -> ChatWebhook:
    _require_admin(user)
    hook = ChatWebhook.objects.filter(pk=pk).first()
    if hook is None:
        raise Http404("No such webhook.")
    return hook


def _initial(hook: ChatWebhook) -> dict[str, Any]:
    return {"name": hook.name, "style": hook.style, "url": hook.url, "kinds": hook.kinds}


@require_http_methods(["GET", "POST"])
@login_required
def webhook_list(request: HtmxHttpRequest) -> HttpResponse:
    _require_admin(request.user)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            hook, raw = services.chat_webhook_save(by=request.user, request=request, **form.cleaned_data)  # type: ignore[arg-type]
        except UnsafeURL as exc:
            form.add_error("url", str(exc))
        else:
            if raw:
                # Shown once, on this response only (never in a message cookie or the session):
                # the receiver needs it to check our signatures.
                return render(
                    request,
                    "notifications/webhook.html",
                    {"hook": hook, "form": WebhookForm(initial=_initial(hook)), "log": [], "new_secret": raw},
                )
            messages.success(request, f"Webhook “{hook.name}” added. Send a test message to check it.")
            return redirect("notifications:webhook", pk=hook.pk)
    return render(
        request,
        "notifications/webhooks.html",
        {"form": form, "webhooks": ChatWebhook.objects.all()},
    )


@require_http_methods(["GET", "POST"])
@login_required
def webhook_detail(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    hook = get_webhook_for_user(request.user, pk)
    form = WebhookForm(request.POST or None, initial=_initial(hook))
    if request.method == "POST" and form.is_valid():
        try:
            services.chat_webhook_save(by=request.user, webhook=hook, request=request, **form.cleaned_data)  # type: ignore[arg-type]
        except UnsafeURL as exc:
            form.add_error("url", str(exc))
        else:
            messages.success(request, "Webhook saved.")
            return redirect("notifications:webhook", pk=hook.pk)
    log = ChatDelivery.objects.filter(webhook=hook).select_related("event")[:50]
    return render(request, "notifications/webhook.html", {"hook": hook, "form": form, "log": log})


@require_POST
@login_required
def webhook_test(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    hook = get_webhook_for_user(request.user, pk)
    answer = services.chat_webhook_test(webhook=hook, by=request.user)  # type: ignore[arg-type]
    if answer.ok:
        messages.success(request, f"The test message was delivered (the chat answered {answer.status}).")
    else:
        messages.error(request, f"The test message was not delivered: {answer.error}")
    return redirect("notifications:webhook", pk=hook.pk)


@require_POST
@login_required
def webhook_delete(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    hook = get_webhook_for_user(request.user, pk)
    services.chat_webhook_delete(webhook=hook, by=request.user, request=request)  # type: ignore[arg-type]
    messages.success(request, f"Webhook “{hook.name}” removed.")
    return redirect("notifications:webhooks")


@require_POST
@login_required
def webhook_redeliver(request: HtmxHttpRequest, pk: uuid.UUID, delivery_pk: uuid.UUID) -> HttpResponse:
    hook = get_webhook_for_user(request.user, pk)
    delivery = ChatDelivery.objects.filter(pk=delivery_pk, webhook=hook).first()
    if delivery is None:
        raise Http404("No such delivery.")
    if services.chat_webhook_redeliver(delivery=delivery, by=request.user, request=request):  # type: ignore[arg-type]
        messages.success(request, "Sending it again now; the log below shows how it goes.")
    else:
        messages.error(request, "It cannot be sent again now: it is a test message, or it is being sent.")
    return redirect("notifications:webhook", pk=hook.pk)
