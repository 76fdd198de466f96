"""`{% calendar_entries entries %}`: posts on the calendar, each a list item linking to its page.
`{% month_rows weeks %}`: the month grid's rows, a cell a day with its first posts and "+N more".

A busy week shows hundreds of posts; written as a template partial, each cost a URL reverse, two
date filters through the time-zone machinery and a dozen variable lookups, most of the page's
time. This writes the same markup from the entries' own values, every value escaped (with the
escaping Django's own `escape` applies)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.common.links import IdUrl
from apps.common.templatetags.links import id_urls_for
from apps.common.text import shortened
from apps.schedule.periods import Day, Entry

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
    caption = shortened(str(post), CAPTION_CHARS)
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


@register.simple_tag(takes_context=True)
def month_rows(context: template.Context, weeks: Iterable[Iterable[Day]]) -> SafeString:
    """The month's weeks as table rows, with the markup the template's loop had (a month holds
    42 days, each a dozen lookups and conditions through the template engine)."""
    detail = id_urls_for(context, "posts:detail")
    rows = (
        "      <tr>\n" + "".join(_day_cell(day, detail) for day in week) + "      </tr>\n" for week in weeks
    )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped)


def _day_cell(day: Day, detail: IdUrl | None) -> str:
    label = day.label  # written by Django's date formatting: digits and English words
    classes = "cal-day"
    if not day.in_period:
        classes += " outside"
    if day.is_today:
        classes += " today"
    if not day.entries:
        classes += " empty-day"
    drop = "" if day.is_past else f' data-drop-date="{label.iso}"'
    current = ' aria-current="date"' if day.is_today else ""
    cell = (
        f'        <td class="{classes}"{drop}{current}>\n'
        f'          <div class="day-number"><time datetime="{label.iso}"><span aria-hidden="true">'
        f'<span class="weekday-short">{escape(label.weekday_short)} </span>{escape(label.number)}</span>'
        f'<span class="visually-hidden">{escape(label.long)}</span></time></div>\n'
    )
    if day.entries:
        entries = "".join(f"<li>{entry_html(entry, detail)}</li>" for entry in day.shown_in_month)
        cell += f'          <ul class="cal-entries">\n            {entries}\n          </ul>\n'
        if more := day.more_in_month:
            cell += (
                f'          <a class="cal-more" href="?view=week&amp;date={label.iso}">+{more} more'
                f'<span class="visually-hidden"> on {escape(label.long)}</span></a>\n'
            )
    return cell + "        </td>\n"
