"""Form widgets of our own.

`QuickSelect` is Django's `Select` written out in Python: the same options, attributes and
selection (Django's own `optgroups` decides them), without the two template includes Django's
renderer makes per option. A time-zone list (about 400 options) or an audit filter naming every
member took more time than the rest of their page together; Django offers no faster renderer,
and a template-free widget is a few lines."""

from __future__ import annotations

from html import escape
from typing import Any

from django import forms
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict[str, Any]) -> str:
    """As Django's widgets/attrs.html writes them: True is a bare name, False or None is left out."""
    out = []
    for name, value in attrs.items():
        if value is True:
            out.append(f" {escape(name)}")
        elif value is not False and value is not None:
            out.append(f' {escape(name)}="{escape(str(value))}"')
    return "".join(out)


class QuickSelect(forms.Select):
    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'<optgroup label="{escape(str(group_name))}">')
            parts.extend(
                f'<option value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                f"{escape(str(option['label']))}</option>"
                for option in options
            )
            if group_name:
                parts.append("</optgroup>")
        parts.append("</select>")
        return mark_safe("".join(parts))  # noqa: S308  # every value escaped above
