"""The queue page's forms: a slot (weekday and local time) and the account's time zone."""

from __future__ import annotations

from django import forms

from apps.common.widgets import QuickSelect
from apps.posts.forms import time_zone_choices
from apps.queues.models import WEEKDAYS


class SlotForm(forms.Form):
    weekday = forms.TypedChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        error_messages={"required": "Choose a day.", "invalid_choice": "Choose a day."},
    )
    local_time = forms.TimeField(
        error_messages={
            "required": "Enter a time, e.g. 18:00.",
            "invalid": "Enter the time as HH:MM, e.g. 18:00.",
        }
    )


class ZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        error_messages={"invalid_choice": "Choose a time zone from the list."},
        widget=QuickSelect,
    )
