"""The caption templates page's form."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.captions.models import SnippetKind


class SnippetForm(forms.Form):
    kind = forms.ChoiceField(
        label="What it is",
        choices=SnippetKind.choices,
        widget=forms.RadioSelect,
        initial=SnippetKind.TEMPLATE,
    )
    name = forms.CharField(max_length=100, error_messages={"required": "Give it a name to find it by."})
    text = forms.CharField(
        label="Text",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="A template is inserted as written; a hashtag group's words each get a #.",
        error_messages={"required": "Write what the composer inserts."},
    )
    client_label = forms.ChoiceField(label="For", required=False)

    def __init__(self, *args: Any, client_labels: list[str], editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["kind"]  # a template stays a template
        self.fields["client_label"].choices = [("", "The whole agency")] + [  # type: ignore[attr-defined]
            (label, f"Client: {label}") for label in client_labels
        ]
