"""Two-step sign-in pages, the same on an agency's subdomain and on the root domain (operators):
the code page after the password, and the page to set it up, get new recovery codes or turn it off."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.mfa.forms import CodeForm, ConfirmAppForm
from apps.mfa.middleware import MFA_SESSION_KEY
from apps.mfa.models import RecoveryCodeDevice
from apps.mfa.reauth import reauth_mark, reauth_prompt, reauth_refusal
from apps.mfa.services import (
    code_match,
    mfa_disable,
    mfa_enabled,
    mfa_required,
    recovery_codes_issue,
    recovery_codes_left,
    totp_confirm,
    totp_device_unsaved,
    totp_key_new,
    totp_qr_svg,
    totp_secret_for_typing,
)
from apps.users.lockout import failure_record, lock_for, lock_message
from tenants.models import Agency

PENDING_KEY_SESSION = "mfa_pending_key"


def _agency(request: HttpRequest) -> Agency:
    return request.tenant  # type: ignore[attr-defined]


def _home(request: HttpRequest) -> str:
    return reverse("operator_admin:index") if _agency(request).is_public else reverse("home")


def _sign_in(request: HttpRequest) -> str:
    return reverse("operator_admin:login") if _agency(request).is_public else reverse("login")


def _next(request: HttpRequest) -> str:
    wanted = str(request.POST.get("next") or request.GET.get("next") or "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return _home(request)


def _signed_in(request: HttpRequest) -> Any:
    user = request.user
    if not user.is_authenticated:
        return None
    return user


@require_http_methods(["GET", "POST"])
@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the app or a recovery code. Wrong codes count in the lockout."""
    user = _signed_in(request)
    if user is None:
        return redirect(_sign_in(request))
    if not request.session.get(MFA_SESSION_KEY) or user.is_verified():
        return redirect(_next(request))
    form = CodeForm(request.POST) if request.method == "POST" else CodeForm()
    context: dict[str, Any] = {"form": form, "next": _next(request), "two_step_pending": True}
    lock = lock_for(request, email=user.email)
    if lock is not None:
        context["lock_message"] = lock_message(lock, zone_name=_agency(request).default_time_zone)
        response = render(request, "mfa/verify.html", {**context, "form": CodeForm()}, status=429)
        response["Retry-After"] = str(lock.seconds_left)
        return response
    if form.is_bound and form.is_valid():
        device = code_match(user=user, token=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            request.session.pop(MFA_SESSION_KEY, None)
            reauth_mark(request)
            if isinstance(device, RecoveryCodeDevice):
                left = device.codes_left()
                messages.warning(
                    request,
                    f"You signed in with a recovery code; it will not work again. {left} "
                    f"recovery code{'s' if left != 1 else ''} left: get new ones from Two-step sign-in.",
                )
            return redirect(_next(request))
        lock = failure_record(request, email=user.email)
        if lock is not None:
            context["lock_message"] = lock_message(lock, zone_name=_agency(request).default_time_zone)
            response = render(request, "mfa/verify.html", {**context, "form": CodeForm()}, status=429)
            response["Retry-After"] = str(lock.seconds_left)
            return response
        form.add_error(
            "code", "That code is not right, or it was used already. Enter the code your app shows now."
        )
    return render(request, "mfa/verify.html", context)


def _setup_page(
    request: HttpRequest,
    *,
    form: ConfirmAppForm | None = None,
    refusal: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page; `refusal` is the re-authentication prompt with what was wrong (apps.mfa.reauth)."""
    user = request.user
    context: dict[str, Any] = {
        "required": mfa_required(user=user, agency=_agency(request)),
        "enabled": mfa_enabled(user=user),
        "home_url": _home(request),
        **(refusal or reauth_prompt(request)),
    }
    context["two_step_pending"] = context["required"] and not context["enabled"]
    if context["enabled"]:
        context["codes_left"] = recovery_codes_left(user=user)
    else:
        key = request.session.get(PENDING_KEY_SESSION) or totp_key_new()
        request.session[PENDING_KEY_SESSION] = key
        context["secret"] = totp_secret_for_typing(device=totp_device_unsaved(user=user, key=key))  # type: ignore[arg-type]
        context["form"] = form or ConfirmAppForm()
    return render(request, "mfa/setup.html", context, status=status)


@require_GET
@never_cache
def setup(request: HttpRequest) -> HttpResponse:
    """Two-step sign-in for the signed-in person: set it up (QR code), or manage it."""
    if _signed_in(request) is None:
        return redirect(_sign_in(request))
    return _setup_page(request)


@require_GET
@never_cache
def qr(request: HttpRequest) -> HttpResponse:
    """The QR code of the authenticator being set up (an image, so the page holds no inline SVG)."""
    user = _signed_in(request)
    key = request.session.get(PENDING_KEY_SESSION)
    if user is None or not key:
        raise Http404("No authenticator is being set up.")
    response = HttpResponse(
        totp_qr_svg(device=totp_device_unsaved(user=user, key=key)), content_type="image/svg+xml"
    )
    response["Cache-Control"] = "no-store"
    return response


def _codes_page(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    return render(request, "mfa/codes.html", {"codes": codes, "first": first, "home_url": _home(request)})


@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    """Turn the authenticator on with the code it shows; then show the recovery codes, once."""
    user = _signed_in(request)
    if user is None:
        return redirect(_sign_in(request))
    key = request.session.get(PENDING_KEY_SESSION)
    form = ConfirmAppForm(request.POST)
    if key is None or mfa_enabled(user=user):
        messages.info(request, "Two-step sign-in was already set up; nothing changed.")
        return redirect("mfa:setup")
    if (refusal := reauth_refusal(request)) is not None:
        form.is_valid()
        return _setup_page(request, form=form, refusal=refusal, status=400)
    if form.is_valid():
        try:
            codes = totp_confirm(user=user, key=key, token=form.cleaned_data["code"], request=request)
        except ValidationError as exc:
            form.add_error("code", exc.message_dict["code"])
        else:
            request.session.pop(PENDING_KEY_SESSION, None)
            device = TOTPDevice.objects.get(user=user, confirmed=True)
            otp_login(request, device)
            request.session.pop(MFA_SESSION_KEY, None)
            return _codes_page(request, codes, first=True)
    return _setup_page(request, form=form)


@require_POST
def codes_regenerate(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    if user is None:
        return redirect(_sign_in(request))
    if not mfa_enabled(user=user):
        return redirect("mfa:setup")
    if (refusal := reauth_refusal(request)) is not None:
        return _setup_page(request, refusal=refusal, status=400)
    return _codes_page(request, recovery_codes_issue(user=user, request=request), first=False)


@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    if user is None:
        return redirect(_sign_in(request))
    if not mfa_enabled(user=user):
        return redirect("mfa:setup")
    if (refusal := reauth_refusal(request)) is not None:
        return _setup_page(request, refusal=refusal, status=400)
    try:
        mfa_disable(user=user, agency=_agency(request), request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("mfa:setup")
    messages.success(request, "Two-step sign-in is off: signing in takes your password only.")
    return redirect("mfa:setup")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Signing out from the code or set-up page, on either site."""
    target = _sign_in(request)
    logout(request)
    return redirect(target)
