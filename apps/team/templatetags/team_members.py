"""The Team page's long lists, written in Python with the markup the template had, every value
escaped: fifty members a page and an invitation's box for every account, each a dozen lookups
and conditions through the template engine, were half of the page's time.

- `{% member_rows rows %}`: the members' table rows (apps.team.views.MemberRow).
- `{% account_checks field options %}`: a box for each account an invitation may grant
  (`field` the form's accounts field, `options` its `account_options()`)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from apps.users.models import Role

register = template.Library()

_EVERY_ACCOUNT = (Role.OWNER, Role.ADMIN)


@register.simple_tag(takes_context=True)
def member_rows(context: template.Context, rows: Iterable[Any]) -> SafeString:
    viewer = context.get("user")
    return mark_safe("\n".join(_row(row, viewer) for row in rows))  # noqa: S308 (every value escaped)


def _row(row: Any, viewer: Any) -> str:
    # f-strings and the standard library's escape (what Django's applies): format_html's lazy
    # checks on every value were a tenth of the page's time.
    member = row.member
    every = member.role in _EVERY_ACCOUNT
    you = ' <span class="muted">(you)</span>' if viewer and member.pk == viewer.pk else ""
    email = f'<br><span class="muted">{escape(member.email)}</span>' if member.name else ""
    role = f'<span class="badge role-{escape(member.role)}">{escape(Role(member.role).label)}</span>'
    count = "All" if every else str(member.account_count)
    plural = "s" if every or member.account_count != 1 else ""
    seen = (
        f'<time datetime="{escape(row.seen_iso)}">{escape(row.seen)}</time>'
        if row.seen
        else '<span class="muted">Never</span>'
    )
    return (
        "      <tr>\n"
        f'        <td><a href="{escape(row.url)}"><strong>{escape(member.get_full_name())}</strong></a>'
        f"{you}{email}</td>\n"
        f"        <td>{role}</td>\n"
        f'        <td>{count}<span class="table-label"> account{plural}</span></td>\n'
        f"        <td>{seen}</td>\n"
        "      </tr>"
    )


@register.simple_tag
def account_checks(field: Any, options: Iterable[tuple[str, str, bool]]) -> SafeString:
    name, auto_id = field.html_name, field.auto_id
    return format_html_join(
        "",
        '<label class="check"><input type="checkbox" name="{}" value="{}" id="{}_{}"{}> {}</label>',
        (
            (name, value, auto_id, index, SafeString(" checked") if ticked else "", label)
            for index, (value, label, ticked) in enumerate(options)
        ),
    )
