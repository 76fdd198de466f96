"""Forms of two-step sign-in. They check presence and shape; apps.mfa.services checks codes."""

from __future__ import annotations

from typing import Any

from django import forms


class _PageForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class CodeForm(_PageForm):
    """The second step of signing in: a code from the app, or a recovery code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery codes.",
        error_messages={
            "required": "Enter the code your authenticator app shows.",
            "max_length": "That is too long for a code.",
        },
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


class ConfirmAppForm(_PageForm):
    """Setting an authenticator app up: the code it shows proves it holds the secret."""

    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        help_text="After adding Postline to the app, enter the 6-digit code it shows.",
        error_messages={
            "required": "Enter the 6-digit code your app shows.",
            "max_length": "A code has 6 digits.",
        },
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
