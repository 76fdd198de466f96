"""The Team page's long lists, written in Python with the markup the template had, every value
escaped: fifty members a page and an invitation's box for every account, each a dozen lookups
and conditions through the template engine, were half of the page's time.

- `{% member_rows rows %}`: the members' table rows (apps.team.views.MemberRow).
- `{% account_checks field options %}`: a box for each account an invitation may grant
  (`field` the form's accounts field, `options` its `account_options()`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.users.models import Role

register = template.Library()

_EVERY_ACCOUNT = (Role.OWNER, Role.ADMIN)


@register.simple_tag(takes_context=True)
def member_rows(context: template.Context, rows: Iterable[Any]) -> SafeString:
    viewer = context.get("user")
    return format_html_join("\n", "{}", ((_row(row, viewer),) for row in rows))


def _row(row: Any, viewer: Any) -> SafeString:
    member = row.member
    every = member.role in _EVERY_ACCOUNT
    return format_html(
        "      <tr>\n"
        '        <td><a href="{url}"><strong>{name}</strong></a>{you}{email}</td>\n'
        '        <td><span class="badge role-{role}">{role_label}</span></td>\n'
        '        <td>{count}<span class="table-label"> account{plural}</span></td>\n'
        "        <td>{seen}</td>\n"
        "      </tr>",
        url=row.url,
        name=member.get_full_name(),
        you=SafeString(' <span class="muted">(you)</span>') if viewer and member.pk == viewer.pk else "",
        email=format_html('<br><span class="muted">{}</span>', member.email) if member.name else "",
        role=member.role,
        role_label=Role(member.role).label,
        count="All" if every else member.account_count,
        plural="s" if every or member.account_count != 1 else "",
        seen=format_html('<time datetime="{}">{}</time>', row.seen_iso, row.seen)
        if row.seen
        else SafeString('<span class="muted">Never</span>'),
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
