"""Forms of the public site, sign-in and agency settings. They check presence and shape; the
services (agency_create, agency_update_settings) hold the rules and give the field messages."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from typing import Any

from django import forms
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
)

from apps.common.widgets import QuickSelect
from apps.users.models import email_normalize
from tenants.models import MfaPolicy


class PageForm(forms.Form):
    """Labels without Django's trailing colon (our templates lay fields out themselves)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


# What Django's password validators (settings.AUTH_PASSWORD_VALIDATORS) ask of a new password.
NEW_PASSWORD_HELP = "At least 8 characters; not a common password, not all digits."  # noqa: S105


def new_password_field(label: str) -> forms.CharField:
    """A new password: never echoed back (a password does not belong in a re-rendered page)."""
    return forms.CharField(
        label=label,
        strip=False,
        help_text=NEW_PASSWORD_HELP,
        error_messages={"required": "Choose a password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


def agency_name_field() -> forms.CharField:
    return forms.CharField(
        label="Agency name",
        max_length=120,
        error_messages={"required": "Give the agency a name."},
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )


class SignupForm(PageForm):
    name = agency_name_field()
    slug = forms.CharField(
        label="Address",
        max_length=40,
        help_text="Lowercase letters, digits and hyphens, 3 to 40 characters. You cannot change it later.",
        error_messages={"required": "Choose your agency's address."},
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false", "inputmode": "url"}
        ),
    )
    owner_name = forms.CharField(
        label="Your name",
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    owner_email = forms.CharField(
        label="Your email",
        max_length=254,
        error_messages={"required": "Enter your email address; you will sign in with it."},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    owner_password = new_password_field("Password")

    def clean_slug(self) -> str:
        return str(self.cleaned_data["slug"]).strip().lower()


class FindAgencyForm(PageForm):
    email = forms.EmailField(
        label="Your email",
        max_length=254,
        error_messages={
            "required": "Enter the email address you sign in with.",
            "invalid": "Enter a valid email address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self) -> str:
        return email_normalize(self.cleaned_data["email"])


class SignInForm(AuthenticationForm):
    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(request, *args, **kwargs)
        username = self.fields["username"]
        username.label = "Email"
        username.widget = forms.EmailInput(
            attrs={"autocomplete": "email", "autofocus": True, "maxlength": 254}
        )
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"


class AgencyPasswordResetForm(PasswordResetForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["email"].label = "Your email"
        self.fields["email"].widget.attrs["autofocus"] = True


class AgencySetPasswordForm(SetPasswordForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["new_password2"].label = "Repeat the new password"


class AgencyPasswordChangeForm(PasswordChangeForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = "Your current password"
        self.fields["new_password2"].label = "Repeat the new password"


@lru_cache(maxsize=1)
def time_zone_choices() -> list[tuple[str, Any]]:
    """IANA zones grouped by region, UTC first; each shown by its full name, since a closed
    select does not show its group."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        region, sep, _ = name.partition("/")
        if not sep or region in {"Etc", "SystemV", "US", "Canada", "Brazil", "Chile", "Mexico"}:
            continue  # aliases and legacy names; the region/city names cover the same zones
        groups.setdefault(region, []).append((name, name.replace("_", " ")))
    return [("UTC", "UTC"), *groups.items()]


def _known_zones() -> set[str]:
    return {"UTC"} | {value for _, options in time_zone_choices()[1:] for value, _ in options}


class AgencySettingsForm(PageForm):
    name = agency_name_field()
    default_time_zone = forms.ChoiceField(
        label="Default time zone",
        help_text="Used for new team members and wherever the agency's own day matters.",
        choices=time_zone_choices,
        widget=QuickSelect,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.initial.get("default_time_zone")
        if current and current not in _known_zones():
            # An agency set to a legacy alias keeps it selectable.
            field = self.fields["default_time_zone"]
            field.choices = [(current, current), *time_zone_choices()]  # type: ignore[attr-defined]


class BrandForm(PageForm):
    """The agency's brand on what its clients see; checked by apps.brand.services.brand_set."""

    colour = forms.CharField(
        label="Brand colour",
        required=False,
        max_length=7,
        help_text="# and six hex digits, e.g. #1f6feb. Leave empty for Postline's blue.",
        widget=forms.TextInput(attrs={"placeholder": "#1f6feb", "autocomplete": "off"}),
    )
    logo = forms.FileField(
        label="Logo",
        required=False,
        help_text="A PNG, JPEG or WebP image of at most 1 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)


class MfaPolicyForm(PageForm):
    mfa_policy = forms.ChoiceField(
        label="Who must use two-step sign-in",
        help_text="Anyone may turn it on for themselves; whoever must is asked to set it up next.",
        choices=MfaPolicy.choices,
        error_messages={"invalid_choice": "Choose one of the options."},
    )


class ProfileForm(PageForm):
    name = forms.CharField(label="Your name", max_length=150, required=False)
    time_zone = forms.ChoiceField(
        label="Your time zone",
        help_text="Every date and time on Postline is shown to you in it.",
        choices=time_zone_choices,
        error_messages={"invalid_choice": "Choose a time zone from the list."},
        widget=QuickSelect,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.initial.get("time_zone")
        if current and current not in _known_zones():
            field = self.fields["time_zone"]
            field.choices = [(current, current), *time_zone_choices()]  # type: ignore[attr-defined]


class EmailChangeForm(PageForm):
    email = forms.EmailField(label="New email address", error_messages={"required": "Enter the new address."})
    password = forms.CharField(
        label="Your current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": "Enter your current password to change your address."},
    )
