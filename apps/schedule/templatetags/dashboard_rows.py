"""`{% attention_items posts %}` and `{% upcoming_rows posts %}`: the dashboard's two post lists,
written in Python with the markup the template's loops had, every value escaped (thirty posts,
each a dozen lookups, filters and a URL tag through the template engine, were a fifth of the
page's time). Times are in the current time zone."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.common.templatetags.days import day_and_time
from apps.common.templatetags.links import id_urls_for
from apps.common.text import shortened

register = template.Library()

TITLE_CHARS = 60


def _status(post: Any) -> str:
    return f'<span class="status status-{escape(post.status)}">{escape(post.status_label)}</span>'


def _title(post: Any, href: str, *, bare: str) -> str:
    """The post's shortened title, linked to its page when the site has one; `bare` wraps it
    otherwise ("<span>{}</span>", or "{}" for no element)."""
    title = escape(shortened(str(post), TITLE_CHARS))
    return f'<a href="{href}">{title}</a>' if href else bare.format(title)


@register.simple_tag(takes_context=True)
def attention_items(context: template.Context, posts: Iterable[Any]) -> SafeString:
    detail = id_urls_for(context, "posts:detail")
    items = []
    for post in posts:
        when = "failed" if post.status == "failed" else "since"
        error = (
            f'\n      <p class="error-message">{escape(post.last_error_message)}</p>'
            if post.last_error_message
            else ""
        )
        items.append(
            '    <li class="attention-item">\n'
            '      <div class="post-line">\n'
            f"        {_status(post)}\n"
            f"        {_title(post, detail(post.pk) if detail else '', bare='<span>{}</span>')}\n"
            "      </div>\n"
            f'      <p class="muted">{escape(str(post.account))} · {when} '
            f"{escape(day_and_time(post.updated_at, 'D j M'))}</p>{error}\n"
            "    </li>\n"
        )
    return mark_safe("".join(items))  # noqa: S308 (every value escaped)


@register.simple_tag(takes_context=True)
def upcoming_rows(context: template.Context, posts: Iterable[Any]) -> SafeString:
    detail = id_urls_for(context, "posts:detail")
    rows = []
    for post in posts:
        rows.append(
            "      <tr>\n"
            f'        <td><time datetime="{day_and_time(post.scheduled_at, "c")}">'
            f"{escape(day_and_time(post.scheduled_at, 'D j M'))}</time></td>\n"
            f"        <td>{escape(str(post.account))}</td>\n"
            f"        <td>{_title(post, detail(post.pk) if detail else '', bare='{}')}</td>\n"
            f"        <td>{_status(post)}</td>\n"
            "      </tr>\n"
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped)
