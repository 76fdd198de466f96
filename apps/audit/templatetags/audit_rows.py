"""The audit table's rows, written in Python with the markup the template had, every value
escaped: fifty entries a page, each with its changes under it, were half of the page's time
through the template engine.

- `{% audit_rows rows %}`: an entry's row, and its changes' row when it has changes
  (apps.audit.views.Row)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def audit_rows(rows: Iterable[Any]) -> SafeString:
    return mark_safe("\n".join(_row(row) for row in rows))  # noqa: S308 (every value escaped)


def _row(row: Any) -> str:
    # Every value here is plain text (the entry's columns and what apps.audit.changes made of
    # them): the standard library's escape is what Django's applies to it.
    entry = row.entry
    ip = f' <span class="address ip muted">{escape(entry.ip)}</span>' if entry.ip else ""
    name = escape(row.object_text)
    target = f'<a href="{escape(row.post_url)}">{name}</a>' if row.post_url else name
    html = (
        "      <tr>\n"
        f'        <td class="nowrap"><time datetime="{escape(row.when_iso)}">{escape(row.when)}</time></td>\n'
        f'        <td class="who"><span class="address">{escape(row.actor)}</span>{ip}</td>\n'
        f'        <td><span class="action" title="{escape(entry.action)}">{escape(row.action)}</span></td>\n'
        f'        <td class="wrap">{target}</td>\n'
        f"        <td>{escape(row.account)}</td>\n"
        "      </tr>"
    )
    if not row.changes:
        return html
    # The changes take the row's whole width, under it: readable without scrolling sideways.
    changes = "".join(f"<dt>{escape(key)}</dt><dd>{escape(text)}</dd>" for key, text in row.changes)
    return (
        f'{html}\n      <tr class="changes-row"><td class="wrap changes-cell" colspan="5">'
        f'<dl class="changes" aria-label="Changes">{changes}</dl></td></tr>'
    )
