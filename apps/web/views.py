"""The web app's own pages.

Root domain: the landing page, agency signup and "find my agency".
An agency's subdomain: sign-in (with lockout), the welcome sign-in after signup, sign-out,
password reset, the agency's settings, and the signed-in home.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.audit.services import audit_record
from apps.brand.services import brand_set
from apps.common.throttle import RateLimited, throttle_hit
from apps.media.services import storage_use
from apps.mfa.reauth import reauth_prompt, reauth_refusal
from apps.users.lockout import Lock, failure_record, lock_for, lock_message, lockout_clear, lockout_response
from apps.users.models import Role, User, email_normalize
from apps.web.email_verification import (
    VerificationError,
    email_verification_confirm,
    email_verification_owner,
    link_hours,
)
from apps.web.forms import (
    AgencyPasswordChangeForm,
    AgencyPasswordResetForm,
    AgencySetPasswordForm,
    AgencySettingsForm,
    BrandForm,
    EmailChangeForm,
    FindAgencyForm,
    MfaPolicyForm,
    ProfileForm,
    SignInForm,
    SignupForm,
)
from apps.web.profile import (
    EmailChangeError,
    email_change_confirm,
    email_change_pending,
    email_change_request,
    profile_update,
)
from apps.web.signup import WelcomeTokenError, agency_signup, welcome_token_consume, welcome_token_user
from apps.web.tasks import (
    web_send_agency_finder_email,
    web_send_email_verification,
    web_send_password_reset_email,
)
from tenants.models import Agency, MfaPolicy
from tenants.services import agency_set_mfa_policy, agency_update_settings


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
    context = {"form": form, "platform_domain": settings.PLATFORM_DOMAIN}
    if form.is_bound and form.is_valid():
        limited = throttle_hit(request, "signup", address=email_normalize(form.cleaned_data["owner_email"]))
        if limited is not None:
            form.add_error(None, limited.sentence("signups"))
            return _too_many(request, "web/signup.html", context, limited)
        try:
            result = agency_signup(**form.cleaned_data)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            return redirect(result.welcome_url)
    return render(request, "web/signup.html", context)


def _too_many(
    request: HttpRequest, template: str, context: dict[str, Any], limited: RateLimited
) -> HttpResponse:
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(limited.retry_after)
    return response


@require_http_methods(["GET", "POST"])
def find_agency(request: HttpRequest) -> HttpResponse:
    """Ask for an email; the answer never says whether it belongs to anyone (apps.web.finder)."""
    form = FindAgencyForm(request.POST) if request.method == "POST" else FindAgencyForm()
    if form.is_bound and form.is_valid():
        limited = throttle_hit(request, "find-agency", address=form.cleaned_data["email"])
        if limited is None:
            web_send_agency_finder_email.send(form.cleaned_data["email"])
            return redirect("find_agency_sent")
        form.add_error(None, limited.sentence("look-ups"))
        return _too_many(request, "web/find_agency.html", {"form": form}, limited)
    return render(request, "web/find_agency.html", {"form": form})


@require_GET
def find_agency_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "web/find_agency_sent.html")


# --- An agency's subdomain: signing in and out ---


class SignInView(auth_views.LoginView):
    """Django's sign-in; django-axes' backend refuses a locked address or IP before the password
    is checked (apps.users.lockout), and this view says so on its own form."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        if getattr(self.request, "axes_locked_out", False):
            email = str(form.data.get("username", ""))[:254]
            lock = lock_for(self.request, email=email)
            if lock is not None:
                return self._refuse(lock, email)
        return super().form_invalid(form)

    def _refuse(self, lock: Lock, email: str) -> HttpResponse:
        # An unbound form: the refusal is the lock's, not the password's.
        form = self.get_form_class()(self.request, initial={"username": email})
        message = lock_message(lock, zone_name=_agency(self.request).default_time_zone)
        context = self.get_context_data(form=form, lock_message=message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(lock.seconds_left)
        return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.success(request, "You have signed out.")
    return redirect("login")


@require_http_methods(["GET", "POST"])
@never_cache
def welcome(request: HttpRequest, token: str) -> HttpResponse:
    """Sign the new owner in with the one-time link signup redirected them to (apps.web.signup).

    Opening the link (GET) only says whom it signs in, to which agency, and asks for a click: a
    GET that signed in would let anyone who signs up an agency sign a visitor in to it (login
    CSRF). The click (POST, CSRF-checked) spends the token: 256 random bits, bound to this agency,
    single use, two minutes.
    """
    agency = _agency(request)
    try:
        if request.method == "GET":
            user = welcome_token_user(agency=agency, raw=token)
            return render(request, "web/welcome.html", {"person": user})
        user = welcome_token_consume(agency=agency, raw=token)
    except WelcomeTokenError as exc:
        return render(
            request, "web/welcome_invalid.html", {"reason": exc.code, "message": str(exc)}, status=400
        )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    next_step = (
        "We emailed you a link to confirm your address: follow it, then connect your clients' TikTok "
        "accounts and invite your team."
        if not agency.is_email_verified
        else "Next, connect your clients' TikTok accounts and invite your team."
    )
    messages.success(
        request,
        f"Welcome to Postline! {agency.name} is ready at {agency.primary_host}: sign in there from now "
        f"on. {next_step}",
    )
    return redirect("home")


# --- Confirming the owner's email address (apps.web.email_verification) ---


def _verification_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context = {
        "agency": _agency(request),
        "may_send": user.role == Role.OWNER,
        "hours": link_hours(),
        "remove_days": settings.UNVERIFIED_AGENCY_REMOVE_DAYS,
        "error": error,
    }
    return render(request, "web/email_verification.html", context, status=status)


@require_GET
@login_required
def email_verification(request: HttpRequest) -> HttpResponse:
    """Why connecting and publishing wait for the owner's address, and, for owners, a new link."""
    return _verification_page(request)


@require_POST
@login_required
def email_verification_resend(request: HttpRequest) -> HttpResponse:
    """Email the signed-in owner a new link (owners only: 404 for anyone else), throttled per IP
    and per address; a worker makes and sends it."""
    user: User = request.user  # type: ignore[assignment]
    if user.role != Role.OWNER:
        raise Http404("No such page.")
    if _agency(request).is_email_verified:
        messages.info(request, "Your email address is confirmed already: there is nothing to send.")
        return redirect("home")
    limited = throttle_hit(request, "email-verification", address=email_normalize(user.email))
    if limited is not None:
        response = _verification_page(request, error=limited.sentence("confirmation emails"), status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    web_send_email_verification.send(str(user.pk))
    messages.success(
        request,
        f"We are sending a new link to {user.email}. It works for {link_hours()} hours; "
        "the links we sent before no longer work.",
    )
    return redirect("email_verification")


@require_http_methods(["GET", "POST"])
@never_cache
def email_verification_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email: opening it (GET) says whose address it confirms and asks for a
    click; the click (POST, CSRF-checked) confirms it. No sign-in needed: the link is the proof."""
    agency = _agency(request)
    try:
        if request.method == "GET":
            owner = email_verification_owner(agency=agency, raw=token)
            return render(request, "web/email_verification_confirm.html", {"owner": owner})
        email_verification_confirm(agency=agency, raw=token, request=request)
    except VerificationError as exc:
        return render(
            request,
            "web/email_verification_invalid.html",
            {"reason": exc.code, "message": str(exc)},
            status=200 if exc.code == "used" else 400,
        )
    messages.success(
        request, "Your email address is confirmed: you can now connect TikTok accounts and publish."
    )
    return redirect("home")


# --- Password reset (Django's views; our templates, the agency's own address in the email) ---


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link: throttled per IP and per address; a worker looks the address up and
    sends the email (apps.web.password_reset), so the answer is the same, as fast, for anyone."""

    form_class = AgencyPasswordResetForm

    def form_valid(self, form: Any) -> HttpResponse:
        email = email_normalize(form.cleaned_data["email"])
        limited = throttle_hit(self.request, "password-reset", address=email)
        if limited is not None:
            form.add_error(None, limited.sentence("reset requests"))
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        web_send_password_reset_email.send(email)
        return redirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset link, under the lockout: a link that does not work counts as a failed
    attempt from the client's IP, and an IP locked that way is refused every link."""

    form_class = AgencySetPasswordForm

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if lock_for(request, email=None) is not None:
            return lockout_response(request)
        response = super().dispatch(request, *args, **kwargs)
        if not self.validlink:
            failure_record(request, email=None)
            if lock_for(request, email=None) is not None:
                return lockout_response(request)
        return response

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user: User = form.user
        # Whoever can read the mailbox may sign in again at once.
        lockout_clear(email=user.email)
        audit_record(action="password.reset", actor=user, obj=user, request=self.request)
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password, giving the current one: a password check like signing in, so wrong
    ones count in the lockout and a locked address is refused."""

    form_class = AgencyPasswordChangeForm
    success_url = reverse_lazy("home")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        lock = lock_for(request, email=request.user.email)  # type: ignore[union-attr]
        if lock is not None:
            return self._refuse(lock)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            lock = failure_record(self.request, email=self.request.user.email)  # type: ignore[union-attr]
            if lock is not None:
                return self._refuse(lock)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(action="password.changed", actor=form.user, obj=form.user, request=self.request)
        messages.success(
            self.request, "Your password is changed. Other devices signed in as you were signed out."
        )
        return response

    def _refuse(self, lock: Lock) -> HttpResponse:
        message = lock_message(lock, zone_name=_agency(self.request).default_time_zone)
        form = self.get_form_class()(self.request.user)  # type: ignore[arg-type]
        context = self.get_context_data(form=form, lock_message=message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(lock.seconds_left)
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
    return _settings_page(request, form=form)


def _settings_page(
    request: HttpRequest,
    *,
    form: AgencySettingsForm | None = None,
    mfa_form: MfaPolicyForm | None = None,
    brand_form: BrandForm | None = None,
    refusal: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    agency = _agency(request)
    initial = {"name": agency.name, "default_time_zone": agency.default_time_zone}
    context = {
        "form": form or AgencySettingsForm(initial=initial),
        "brand_form": brand_form or BrandForm(initial={"colour": agency.brand_colour}),
        "mfa_form": mfa_form or MfaPolicyForm(initial={"mfa_policy": agency.mfa_policy}),
        "agency": agency,
        "media_storage": storage_use(),
        **(refusal or reauth_prompt(request)),
    }
    return render(request, "web/settings.html", context, status=status)


@require_POST
@login_required
def agency_brand(request: HttpRequest) -> HttpResponse:
    """The agency's brand colour and logo; owners and admins only (404 for anyone else)."""
    user: User = request.user  # type: ignore[assignment]
    if not user.is_agency_admin:
        raise Http404("No such page.")
    form = BrandForm(request.POST, request.FILES)
    if form.is_valid():
        agency = _agency(request)
        try:
            saved = brand_set(
                agency=agency,
                colour=form.cleaned_data["colour"],
                logo=form.cleaned_data["logo"] or None,
                remove_logo=form.cleaned_data["remove_logo"],
                by=user,
                request=request,
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            if (saved.brand_colour, saved.brand_logo) == (agency.brand_colour, agency.brand_logo):
                messages.info(request, "Nothing changed: the brand was already like that.")
            else:
                messages.success(request, "Brand saved.")
            return redirect("settings")
    return _settings_page(request, brand_form=form, status=400)


_MFA_POLICY_SAVED = {
    MfaPolicy.NOBODY: "Saved: nobody must use two-step sign-in; each person chooses.",
    MfaPolicy.ADMINS: "Saved: owners and admins must use two-step sign-in.",
    MfaPolicy.EVERYONE: "Saved: everyone must use two-step sign-in.",
}


@require_POST
@login_required
def agency_mfa_policy(request: HttpRequest) -> HttpResponse:
    """Who must use two-step sign-in: owners only (404 for anyone else), asked for the password again."""
    user: User = request.user  # type: ignore[assignment]
    if user.role != Role.OWNER:
        raise Http404("No such page.")
    form = MfaPolicyForm(request.POST)
    if (refusal := reauth_refusal(request)) is not None:
        form.is_valid()
        return _settings_page(request, mfa_form=form, refusal=refusal, status=400)
    if form.is_valid():
        try:
            saved = agency_set_mfa_policy(
                agency=_agency(request), policy=form.cleaned_data["mfa_policy"], by=user, request=request
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, _MFA_POLICY_SAVED[MfaPolicy(saved.mfa_policy)])
            return redirect("settings")
    return _settings_page(request, mfa_form=form, status=400)


# --- Your profile ---


def _profile_page(
    request: HttpRequest,
    *,
    form: ProfileForm | None = None,
    email_form: EmailChangeForm | None = None,
    lock_note: str = "",
    status: int = 200,
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context = {
        "form": form or ProfileForm(initial={"name": user.name, "time_zone": user.time_zone}),
        "email_form": email_form or EmailChangeForm(),
        "time_zone": user.time_zone or "UTC",
        "lock_message": lock_note,
    }
    return render(request, "web/profile.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The signed-in person's own name and time zone, with the ways to change their address,
    password, two-step sign-in and notifications."""
    if request.method == "GET":
        return _profile_page(request)
    user: User = request.user  # type: ignore[assignment]
    form = ProfileForm(request.POST, initial={"time_zone": user.time_zone})
    if not form.is_valid():
        return _profile_page(request, form=form)
    changed = profile_update(
        user=user, name=form.cleaned_data["name"], time_zone=form.cleaned_data["time_zone"], request=request
    )
    messages.success(
        request,
        f"Saved. Times are shown in {user.time_zone}." if changed else "Nothing to save: nothing changed.",
    )
    return redirect("profile")


@require_POST
@login_required
def profile_email(request: HttpRequest) -> HttpResponse:
    """Ask to sign in with another address: the current password, then a link to the new one."""
    user: User = request.user  # type: ignore[assignment]
    form = EmailChangeForm(request.POST)
    if (lock := lock_for(request, email=user.email)) is not None:
        message = lock_message(lock, zone_name=user.time_zone or "UTC")
        return _profile_page(request, email_form=form, lock_note=message, status=429)
    if not form.is_valid():
        return _profile_page(request, email_form=form)
    if not user.check_password(form.cleaned_data["password"]):
        if (lock := failure_record(request, email=user.email)) is not None:
            message = lock_message(lock, zone_name=user.time_zone or "UTC")
            return _profile_page(request, email_form=form, lock_note=message, status=429)
        form.add_error("password", "That is not your current password.")
        return _profile_page(request, email_form=form)
    try:
        email_change_request(user=user, new_email=form.cleaned_data["email"], request=request)
    except EmailChangeError as exc:
        form.add_error("email", str(exc))
        return _profile_page(request, email_form=form)
    messages.success(
        request,
        f"We sent a link to {email_normalize(form.cleaned_data['email'])}. Open it to make the change; "
        f"until then you sign in with {user.email}.",
    )
    return redirect("profile")


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def email_change_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email: GET asks (a mail scanner changes nothing), POST makes the change."""
    user: User = request.user  # type: ignore[assignment]
    try:
        if request.method == "GET":
            new_email = email_change_pending(user=user, raw=token)
            return render(request, "web/email_change_confirm.html", {"new_email": new_email})
        new_email = email_change_confirm(user=user, raw=token, request=request)
    except EmailChangeError as exc:
        return render(request, "web/email_change_confirm.html", {"error": str(exc)}, status=400)
    messages.success(request, f"Done: you now sign in with {new_email}.")
    return redirect("profile")
