"""The operators' console on the root domain: every agency's figures, the platform's state, and
suspending, reactivating or deleting an agency with a reason."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from apps.common.pagination import keyset_page
from apps.operators.forms import StatusChangeForm
from apps.operators.selectors import AGENCY_ORDER, agencies_for_console, platform_panel
from tenants.admin import operator_site
from tenants.db import connection
from tenants.models import Agency, AgencyStatus
from tenants.services import agency_delete, agency_reactivate, agency_suspend

PAGE_SIZE = 50

SERVICES: dict[str, Callable[..., Agency]] = {
    "suspend": agency_suspend,
    "reactivate": agency_reactivate,
    "delete": agency_delete,
}


def operator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The console's gate: whoever the operators' admin lets in (active staff signed in with two
    steps), on the root domain only; anyone else is told there is nothing here (404)."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if connection.schema_name != "public" or not operator_site.has_permission(request):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return gated


def _get_agency_for_operator(pk: int) -> Agency:
    agency = Agency.objects.exclude(schema_name="public").filter(pk=pk).first()
    if agency is None:
        raise Http404("No such agency.")
    return agency


@require_GET
@operator_required
def console(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    page = keyset_page(agencies_for_console(status=status), AGENCY_ORDER, request.GET, size=PAGE_SIZE)
    context = {
        **operator_site.each_context(request),
        "title": "Operator console",
        "page": page,
        "panel": platform_panel(),
        "status": status,
        "statuses": AgencyStatus.choices,
        "actions": StatusChangeForm.ACTIONS,
    }
    return render(request, "operators/console.html", context)


@require_http_methods(["GET", "POST"])
@operator_required
def agency_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for the reason (GET), then change the agency's status with it (POST, redirect)."""
    agency = _get_agency_for_operator(pk)
    form = StatusChangeForm(request.POST or None, initial={"action": request.GET.get("action", "suspend")})
    if request.method == "POST" and form.is_valid():
        action = form.cleaned_data["action"]
        try:
            SERVICES[action](agency=agency, operator=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            done = {"suspend": "suspended", "reactivate": "reactivated", "delete": "deleted"}[action]
            messages.success(request, f"{agency.name} is {done}; its owners are emailed the reason.")
            return redirect(reverse("operators:console"))
    action = form["action"].value() or "suspend"
    context = {
        **operator_site.each_context(request),
        "title": f"{StatusChangeForm.ACTIONS.get(action, 'Change')} {agency.name}",
        "agency": agency,
        "form": form,
        "action": action,
    }
    return render(request, "operators/agency_status.html", context)
