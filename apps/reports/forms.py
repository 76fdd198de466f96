"""Which client's report, over which days."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from apps.reports.selectors import MAX_DAYS


class ReportForm(forms.Form):
    """The period; the client is checked against the reader's own clients by the view (404)."""

    client = forms.CharField(max_length=128, required=False)
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, today: dt.date, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The period ends before it starts.")
            elif end > self.today:
                self.add_error("end", "The period cannot end after today.")
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("start", f"Choose at most {MAX_DAYS} days.")
        return data
