"""The API keys page (owners and admins): make a key (shown once), see its use, revoke it."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import TikTokAccount
from apps.api.keys import KEY_ROLES, ApiKeyError, api_key_create, api_key_revoke
from apps.api.models import ApiKey
from apps.team.selectors import require_team_admin
from apps.users.models import User


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses the key, such as “Reporting tool”.")
    role = forms.ChoiceField(
        choices=[(role.value, role.label) for role in KEY_ROLES],
        initial="editor",
        help_text=(
            "What the key may do, as a member with this role would. "
            "Admin keys see every account and the audit log."
        ),
    )
    accounts = forms.ModelMultipleChoiceField(
        queryset=TikTokAccount.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "The accounts it may use (admin keys: all). Change them afterwards on the key's member page."
        ),
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: it works until revoked.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["accounts"].queryset = TikTokAccount.objects.order_by("username", "display_name")  # type: ignore[attr-defined]


def _expiry(day: dt.date | None, user: User) -> dt.datetime | None:
    """The end of `day` in the admin's time zone."""
    if day is None:
        return None
    zone = zoneinfo.ZoneInfo(user.time_zone or "UTC")
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)


def _page(request: HttpRequest, form: KeyForm, *, new_key: str = "", status: int = 200) -> HttpResponse:
    keys = ApiKey.objects.select_related("member", "created_by").order_by("revoked_at", "-created_at")
    response = render(
        request,
        "api/keys.html",
        {"keys": keys, "form": form, "new_key": new_key, "now": timezone.now()},
        status=status,
    )
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def key_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    require_team_admin(user)
    if request.method == "GET":
        return _page(request, KeyForm())
    form = KeyForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    role = form.cleaned_data["role"]
    try:
        key, raw = api_key_create(
            name=form.cleaned_data["name"],
            role=role,
            accounts=[] if role == "admin" else form.cleaned_data["accounts"],
            expires_at=_expiry(form.cleaned_data["expires_on"], user),
            by=user,
            request=request,
        )
    except ApiKeyError as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    messages.success(request, f"Key “{key.name}” made. Copy it now: it is shown only this once.")
    # The only time the secret is sent: in this answer, never stored, never in a redirect.
    return _page(request, KeyForm(), new_key=raw)


@require_POST
@login_required
def key_revoke(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    require_team_admin(user)
    key = ApiKey.objects.filter(pk=pk).first()
    if key is None:
        raise Http404("No such key.")
    if api_key_revoke(key=key, by=user, request=request):
        messages.success(
            request, f"Key “{key.name}” revoked: requests signed with it are refused from now on."
        )
    else:
        messages.info(request, f"Key “{key.name}” was already revoked.")
    return redirect("api_keys:list")
