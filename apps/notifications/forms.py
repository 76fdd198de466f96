"""Forms of the notification pages: the grid of kinds and channels, quiet hours, digest, webhooks."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.notifications.models import CHOOSABLE_KINDS, Channel, Kind, WebhookStyle


def choice_name(kind: str, channel: str) -> str:
    return f"{kind}__{channel}"


class ChoicesForm(forms.Form):
    """One checkbox per kind and channel, `initial` from what is in force now."""

    def __init__(self, *args: Any, current: dict[tuple[str, str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in CHOOSABLE_KINDS:
            for channel in Channel:
                self.fields[choice_name(kind, channel)] = forms.BooleanField(
                    required=False,
                    initial=current.get((kind, channel), False),
                    label=f"{Kind(kind).label}: {channel.label}",
                )

    def choices(self) -> dict[tuple[str, str], bool]:
        return {
            (kind, channel): bool(self.cleaned_data.get(choice_name(kind, channel)))
            for kind in CHOOSABLE_KINDS
            for channel in Channel.values
        }

    def rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The grid as the template lays it out: a kind's label, then its channels' boxes."""
        return [
            (Kind(kind).label, [self[choice_name(kind, channel)] for channel in Channel.values])
            for kind in CHOOSABLE_KINDS
        ]


class PreferencesForm(ChoicesForm):
    quiet_start = forms.TimeField(
        required=False, label="Quiet hours from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(required=False, label="until", widget=forms.TimeInput(attrs={"type": "time"}))
    digest_enabled = forms.BooleanField(required=False, label="Email me a daily digest")
    digest_hour = forms.TypedChoiceField(
        coerce=int,
        choices=[(h, f"{h:02d}:00") for h in range(24)],
        initial=8,
        label="at",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            raise forms.ValidationError("Give quiet hours both a start and an end, or neither.")
        if data.get("quiet_start") is not None and data.get("quiet_start") == data.get("quiet_end"):
            raise forms.ValidationError("Quiet hours must start and end at different times.")
        return data


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="For you: the channel it posts to, say.")
    style = forms.ChoiceField(choices=WebhookStyle.choices, label="Kind", widget=forms.RadioSelect)
    url = forms.URLField(
        max_length=500,
        label="Address",
        assume_scheme="https",
        help_text="The incoming webhook address your chat gave you (https://…).",
    )
    kinds = forms.MultipleChoiceField(
        choices=[(k, Kind(k).label) for k in CHOOSABLE_KINDS],
        widget=forms.CheckboxSelectMultiple,
        label="Tell the chat when",
    )
