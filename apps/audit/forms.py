"""The audit page's filters."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any, cast

from django import forms

from apps.audit.actions import action_label
from apps.audit.selectors import SYSTEM, AuditFilters
from apps.common.widgets import QuickSelect

DATE_FORMAT_HELP = "Enter the date as YYYY-MM-DD, e.g. 2026-03-14."


class AuditFilterForm(forms.Form):
    """Who, what, which account and when; every field optional. The dates are days in the
    viewer's time zone, both ends included."""

    actor = forms.ChoiceField(
        label="Who",
        required=False,
        error_messages={"invalid_choice": "No such person in this agency."},
        widget=QuickSelect,
    )
    action = forms.ChoiceField(
        label="Action",
        required=False,
        error_messages={"invalid_choice": "No entry in the log has this action."},
        widget=QuickSelect,
    )
    account = forms.ChoiceField(
        label="Account",
        required=False,
        error_messages={"invalid_choice": "No such TikTok account in this agency."},
        widget=QuickSelect,
    )
    date_from = forms.DateField(
        label="From",
        required=False,
        error_messages={"invalid": DATE_FORMAT_HELP},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        error_messages={"invalid": DATE_FORMAT_HELP},
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(
        self,
        *args: Any,
        actors: list[tuple[str, str]],
        actions: list[str],
        accounts: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self._choice("actor").choices = [("", "Everyone"), (SYSTEM, "System or signed-out visitor"), *actors]
        self._choice("action").choices = [("", "All actions"), *((a, action_label(a)) for a in actions)]
        self._choice("account").choices = [("", "All accounts"), *accounts]

    def _choice(self, name: str) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields[name])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("date_from"), data.get("date_to")
        if since and until and since > until:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self, time_zone: str) -> AuditFilters:
        """The valid form's filters, its dates read as whole days in `time_zone`."""
        zone = zoneinfo.ZoneInfo(time_zone)
        data = self.cleaned_data
        since, until = data.get("date_from"), data.get("date_to")
        return AuditFilters(
            actor=data.get("actor") or "",
            action=data.get("action") or "",
            account_id=uuid.UUID(data["account"]) if data.get("account") else None,
            since=dt.datetime.combine(since, dt.time.min, tzinfo=zone) if since else None,
            before=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
            if until
            else None,
        )

    def describe(self) -> dict[str, str]:
        """The chosen filters, as a person reads them (for the export's own audit entry)."""
        chosen = {}
        for name in ("actor", "action", "account", "date_from", "date_to"):
            value = self.cleaned_data.get(name)
            if value:
                field = self.fields[name]
                labels = dict(getattr(field, "choices", []))
                chosen[name] = str(labels.get(value, value))
        return chosen
