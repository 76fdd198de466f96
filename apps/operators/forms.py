"""The operators' console forms."""

from __future__ import annotations

from django import forms

from tenants.services import REASON_MAX_LENGTH


class StatusChangeForm(forms.Form):
    """Suspend, reactivate or delete one agency; the reason is emailed to its owners."""

    ACTIONS = {"suspend": "Suspend", "reactivate": "Reactivate", "delete": "Delete"}

    action = forms.ChoiceField(choices=list(ACTIONS.items()), widget=forms.HiddenInput)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=REASON_MAX_LENGTH,
        # The service says why (the same sentence as the admin's); the form only trims it.
        required=False,
        help_text="Emailed to the agency's owners and kept in the operators' and the agency's audit logs.",
    )
