"""The web app's own pages.

Root domain: the landing page, agency signup and "find my agency".
An agency's subdomain: sign-in (with lockout), the welcome sign-in after signup, sign-out,
password reset, the agency's settings, and the signed-in home.
"""

from __future__ import annotations

import math
import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.audit.services import audit_record, client_ip
from apps.users.models import User
from apps.web.forms import (
    AgencyPasswordResetForm,
    AgencySetPasswordForm,
    AgencySettingsForm,
    FindAgencyForm,
    SignInForm,
    SignupForm,
)
from apps.web.signup import WelcomeTokenError, agency_signup, welcome_token_consume
from apps.web.tasks import web_send_agency_finder_email
from apps.web.throttle import (
    Lock,
    login_failure_record,
    login_lock,
    login_lockout_clear,
    login_success_record,
    rate_limit_hit,
)
from tenants.models import Agency
from tenants.services import agency_update_settings


def _agency(request: HttpRequest) -> Agency:
    return request.tenant  # type: ignore[attr-defined]


def _add_service_errors(form: Form, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names (the rest above the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- Root domain ---


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "web/landing.html")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an agency, then send the browser to its subdomain with a one-time sign-in link."""
    form = SignupForm(request.POST) if request.method == "POST" else SignupForm()
    if form.is_bound and form.is_valid():
        try:
            result = agency_signup(**form.cleaned_data)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            return redirect(result.welcome_url)
    return render(request, "web/signup.html", {"form": form, "platform_domain": settings.PLATFORM_DOMAIN})


def _find_agency_limit() -> tuple[int, int]:
    """Look-ups allowed per IP, and the window in seconds (settings FIND_AGENCY_RATE)."""
    limit, window = getattr(settings, "FIND_AGENCY_RATE", (5, 600))
    return int(limit), int(window)


@require_http_methods(["GET", "POST"])
def find_agency(request: HttpRequest) -> HttpResponse:
    """Ask for an email; the answer never says whether it belongs to anyone (apps.web.finder)."""
    form = FindAgencyForm(request.POST) if request.method == "POST" else FindAgencyForm()
    if form.is_bound and form.is_valid():
        limit, window = _find_agency_limit()
        limited = rate_limit_hit("find-agency", client_ip(request) or "unknown", limit=limit, window=window)
        if limited is None:
            web_send_agency_finder_email.send(form.cleaned_data["email"])
            return redirect("find_agency_sent")
        form.add_error(
            None,
            f"Too many look-ups from your network: at most {limit} every {window // 60} minutes. "
            f"Please try again in {limited.minutes} minute{'s' if limited.minutes != 1 else ''}.",
        )
        response = render(request, "web/find_agency.html", {"form": form}, status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    return render(request, "web/find_agency.html", {"form": form})


@require_GET
def find_agency_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "web/find_agency_sent.html")


# --- An agency's subdomain: signing in and out ---


def _lock_message(lock: Lock, agency: Agency) -> str:
    try:
        zone = zoneinfo.ZoneInfo(agency.default_time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    minutes = max(1, math.ceil(lock.seconds_left / 60))
    who = "this email" if lock.scope == "email" else "your network"
    until = f"{lock.until.astimezone(zone):%H:%M} ({zone.key})"
    return (
        f"Too many failed sign-in attempts for {who}, so signing in is paused until {until}, "
        f"about {minutes} minute{'s' if minutes != 1 else ''} from now. "
        "If you have forgotten your password, you can reset it meanwhile."
    )


class SignInView(auth_views.LoginView):
    """Django's sign-in, with the lockout of apps.web.throttle in front of the password check."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        email = str(request.POST.get("username", ""))[:254]
        lock = login_lock(request, email=email)
        if lock is not None:
            return self._refuse(lock, email)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error(NON_FIELD_ERRORS, "invalid_login") or form.has_error(NON_FIELD_ERRORS, "inactive"):
            email = str(form.data.get("username", ""))[:254]
            lock = login_failure_record(self.request, email=email)
            if lock is not None:
                return self._refuse(lock, email)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        login_success_record(email=form.get_user().email)
        return super().form_valid(form)

    def _refuse(self, lock: Lock, email: str) -> HttpResponse:
        # An unbound form: validating the posted one would check the password.
        form = self.get_form_class()(self.request, initial={"username": email})
        context = self.get_context_data(form=form, lock_message=_lock_message(lock, _agency(self.request)))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(lock.seconds_left)
        return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.success(request, "You have signed out.")
    return redirect("login")


@require_GET
@never_cache
def welcome(request: HttpRequest, token: str) -> HttpResponse:
    """Sign the new owner in with the one-time link signup redirected them to (apps.web.signup).

    A GET that signs in, because it is the target of a cross-site redirect; what authorises it
    is the token (256 random bits, bound to this agency, spent on first use, two minutes).
    """
    agency = _agency(request)
    try:
        user = welcome_token_consume(agency=agency, raw=token)
    except WelcomeTokenError as exc:
        return render(
            request, "web/welcome_invalid.html", {"reason": exc.code, "message": str(exc)}, status=400
        )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(
        request,
        f"Welcome to Postline! {agency.name} is ready at {agency.primary_host}: sign in there from now "
        "on. Next, connect your clients' TikTok accounts and invite your team.",
    )
    return redirect("home")


# --- Password reset (Django's views; our templates, the agency's own address in the email) ---


class PasswordResetView(auth_views.PasswordResetView):
    form_class = AgencyPasswordResetForm
    email_template_name = "registration/password_reset_email.html"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: Any) -> HttpResponse:
        # The link names the agency's configured address, never the request's Host header.
        agency = _agency(self.request)
        self.extra_email_context = {"agency": agency, "agency_url": agency.url.rstrip("/")}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = AgencySetPasswordForm

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user: User = form.user
        # Whoever can read the mailbox may sign in again at once.
        login_lockout_clear(email=user.email)
        audit_record(action="password.reset", actor=user, obj=user, request=self.request)
        return response


# --- Signed-in pages ---


@require_http_methods(["GET", "POST"])
@login_required
def agency_settings(request: HttpRequest) -> HttpResponse:
    """The agency's name and default time zone; owners and admins only (404 for anyone else)."""
    user: User = request.user  # type: ignore[assignment]
    if not user.is_agency_admin:
        raise Http404("No such page.")
    agency = _agency(request)
    initial = {"name": agency.name, "default_time_zone": agency.default_time_zone}
    if request.method == "POST":
        form = AgencySettingsForm(request.POST, initial=initial)
        if form.is_valid():
            try:
                saved = agency_update_settings(agency=agency, **form.cleaned_data, by=user, request=request)
            except ValidationError as exc:
                _add_service_errors(form, exc)
            else:
                if (saved.name, saved.default_time_zone) == (agency.name, agency.default_time_zone):
                    messages.info(request, "Nothing changed: the settings were already like that.")
                else:
                    messages.success(request, "Settings saved.")
                return redirect("settings")
    else:
        form = AgencySettingsForm(initial=initial)
    return render(request, "web/settings.html", {"form": form, "agency": agency})
