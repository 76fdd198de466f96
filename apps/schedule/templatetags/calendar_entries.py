"""`{% calendar_entries entries %}`: posts on the calendar, each a list item linking to its page.

A busy week shows hundreds of posts; written as a template partial, each cost a URL reverse, two
date filters through the time-zone machinery and a dozen variable lookups, most of the page's
time. This writes the same markup from the entries' own values, every value escaped (with the
escaping Django's own `escape` applies)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from apps.common.links import IdUrl
from apps.common.templatetags.links import id_urls_for
from apps.schedule.periods import Entry

register = template.Library()

CAPTION_CHARS = 48


@register.simple_tag(takes_context=True)
def calendar_entries(context: template.Context, entries: Iterable[Entry]) -> SafeString:
    detail = id_urls_for(context, "posts:detail")
    return mark_safe("".join(f"<li>{entry_html(entry, detail)}</li>" for entry in entries))  # noqa: S308


def entry_html(entry: Entry, detail: IdUrl | None) -> str:
    """One post: its local time, account, kind, caption and status; a link to its page (which
    may be dragged when the viewer may move it) when `detail` (post id to page URL) is given."""
    post, local = entry.post, entry.local
    caption = str(post)
    if len(caption) > CAPTION_CHARS:
        caption = Truncator(caption).chars(CAPTION_CHARS)
    kind = f'<span class="cal-kind">{escape(label)}</span> ' if (label := post.photos_label) else ""
    inner = (
        f'<time datetime="{local.isoformat()}">{local:%H:%M}</time> '
        f'<span class="cal-account">{escape(post.account_label)}</span> {kind}'
        f'<span class="cal-caption">{escape(caption)}</span> '
        f'<span class="cal-status">{escape(post.status_label)}</span>'
    )
    status = escape(post.status)
    if detail is None:
        return f'<span class="cal-post status-{status}">{inner}</span>'
    href = detail(post.pk)
    if entry.movable:
        return (
            f'<a class="cal-post status-{status}" href="{href}" draggable="true" data-post="{post.pk}">'
            f"{inner}</a>"
        )
    return f'<a class="cal-post status-{status}" href="{href}" draggable="false">{inner}</a>'
