"""`{% post_rows posts %}`: the Posts list's rows, written in Python with the markup the template
had, every value escaped (a page of posts, each a dozen lookups and filters through the template
engine). Times are in the current time zone."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.common.templatetags.days import day_and_time
from apps.common.templatetags.links import row_links
from apps.common.text import shortened

register = template.Library()


@register.simple_tag(takes_context=True)
def post_rows(context: template.Context, posts: Iterable[Any]) -> SafeString:
    detail = row_links(context, "posts:detail")
    rows = []
    for post in posts:
        when = (
            f'<time datetime="{day_and_time(post.scheduled_at, "c")}">'
            f"{escape(day_and_time(post.scheduled_at, 'D j M Y'))}</time>"
            if post.scheduled_at
            else '<span class="muted">Not scheduled</span>'
        )
        kind = f'<span class="kind-badge">{escape(label)}</span>' if (label := post.photos_label) else ""
        caption = shortened(post.caption or "", 90) or "(no caption)"
        error = ""
        if (post.last_error_message and post.status == "failed") or post.status == "needs_attention":
            error = f'<br><span class="muted">{escape(shortened(post.last_error_message or "", 80))}</span>'
        status = f'<span class="status status-{escape(post.status)}">{escape(post.status_label)}</span>'
        rows.append(
            "      <tr>\n"
            f"        <td>{when}</td>\n"
            f"        <td>{escape(str(post.account))}</td>\n"
            f'        <td class="caption-cell">{kind}<a href="{detail(post.pk)}">{escape(caption)}</a></td>\n'
            f"        <td>{status}{error}</td>\n"
            "      </tr>\n"
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped)
