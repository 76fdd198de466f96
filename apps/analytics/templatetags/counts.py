"""`{{ value|grouped }}`: a whole count with its thousands grouped ("12,345"), as `floatformat:"g"`
writes it in English, without its decimal arithmetic: the analytics page writes hundreds of them
(a snapshot table, every video's counts), and `floatformat` was a third of its rendering."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def grouped(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(floatformat(value, "g"))
