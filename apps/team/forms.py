"""The Team page's forms: they parse what an admin typed; apps.team.services hold the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, Perm
from apps.common.widgets import QuickSelect
from apps.users.models import Role
from apps.web.forms import PageForm, new_password_field

INVITABLE_ROLES = [(value, label) for value, label in Role.choices if value != Role.OWNER]
PERM_CHOICES = [(perm.value, perm.label) for perm in Perm]


def role_defaults_text(role: str) -> str:
    """What a role gives on each account granted to someone, in words."""
    if role in {Role.OWNER, Role.ADMIN}:
        return "every permission on every account, and manages the team"
    return ", ".join(perm.label for perm in Perm if perm in ROLE_DEFAULTS[role])


class AccountChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: TikTokAccount) -> str:
        client = f" ({obj.client_label})" if obj.client_label else ""
        return f"{obj}{client}"


class InviteForm(PageForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        error_messages={
            "required": "Enter the email address to invite.",
            "invalid": "Enter a valid email address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(
        label="Role",
        choices=INVITABLE_ROLES,
        initial=Role.EDITOR,
        error_messages={"invalid_choice": "Choose a role from the list."},
        widget=QuickSelect,
    )
    accounts = AccountChoiceField(
        label="Accounts to grant",
        queryset=TikTokAccount.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="They get their role's default permissions on each account you tick. "
        "Owners and admins hold every account anyway.",
    )

    def __init__(self, *args: Any, accounts: QuerySet[TikTokAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accounts"].queryset = accounts  # type: ignore[attr-defined]

    def account_options(self) -> list[tuple[str, str, bool]]:
        """Each account to tick: its id, its label and whether it is ticked (what was sent is
        kept). The page writes the boxes itself: Django's widget templates took most of the Team
        page's time with 50 accounts."""
        field: AccountChoiceField = self.fields["accounts"]  # type: ignore[assignment]
        ticked = {str(value) for value in (self["accounts"].value() or [])}
        return [
            (str(account.pk), field.label_from_instance(account), str(account.pk) in ticked)
            for account in field.queryset or ()
        ]

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()


class RoleForm(PageForm):
    role = forms.ChoiceField(
        label="Role",
        choices=Role.choices,
        error_messages={"invalid_choice": "Choose a role from the list."},
        widget=QuickSelect,
    )

    def __init__(self, *args: Any, may_make_owner: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_make_owner:
            self.fields["role"].choices = INVITABLE_ROLES  # type: ignore[attr-defined]


class AccessForm(PageForm):
    """One row of checkboxes per account: the permissions the member holds on it."""

    def __init__(self, *args: Any, accounts: list[TikTokAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = accounts
        for account in accounts:
            self.fields[f"account_{account.pk}"] = forms.MultipleChoiceField(
                label=str(account),
                choices=PERM_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )

    def rows(self) -> list[tuple[TikTokAccount, forms.BoundField]]:
        return [(account, self[f"account_{account.pk}"]) for account in self.accounts]

    def table(self) -> dict[Any, set[Perm]]:
        """The permissions per account, for the accounts the page showed (`shown`): an account
        connected while the page was open is left as it is, not stripped."""
        shown = set(self.data.getlist("shown")) if hasattr(self.data, "getlist") else set()
        return {
            account.pk: {Perm(value) for value in self.cleaned_data[f"account_{account.pk}"]}
            for account in self.accounts
            if str(account.pk) in shown
        }


class JoinForm(PageForm):
    name = forms.CharField(
        label="Your name",
        max_length=150,
        error_messages={"required": "Enter your name, as your team will see it."},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password = new_password_field("Choose a password")
    password2 = forms.CharField(
        label="Repeat the password",
        strip=False,
        error_messages={"required": "Repeat the password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password2") and data["password"] != data["password2"]:
            self.add_error("password2", "The two passwords differ; type the same one twice.")
        return data
