"""Counts on the analytics page, which writes hundreds of them (a year of daily snapshots, twice).

- `{{ value|grouped }}`: a whole count with its thousands grouped ("12,345"), as
  `floatformat:"g"` writes it in English, without its decimal arithmetic (`floatformat` was a
  third of the page's rendering).
- `{% follower_dots chart %}` and `{% follower_rows snapshots %}`: the follower chart's dots and
  its table's rows, in the markup the template had (each day a dozen lookups and filters
  through the template engine), every value escaped.
- `{% bar_rows chart metric %}` and `{% video_rows videos %}`: the videos' bars and table rows,
  the same way.
- `{% account_options accounts account %}`: the account picker's options, the shown one
  selected."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.template.defaultfilters import floatformat
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from apps.common.templatetags.days import day
from apps.common.templatetags.links import id_urls_for
from apps.common.text import shortened

register = template.Library()


@register.filter
def grouped(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(floatformat(value, "g"))


@register.simple_tag
def follower_dots(chart: Any) -> SafeString:
    """A dot for each day of the follower chart (apps.analytics.selectors.LineChart), titled with
    the day and its count; nothing when the chart is too dense for dots."""
    if not chart.dot_radius:
        return SafeString("")
    return format_html_join(
        "\n",
        '      <circle class="dot" cx="{}" cy="{}" r="{}"><title>{}: {} followers</title></circle>',
        (
            (str(point.x), str(point.y), str(chart.dot_radius), day(point.date, "j F"), grouped(point.value))
            for point in chart.points
        ),
    )


@register.simple_tag
def follower_rows(snapshots: Iterable[Any]) -> SafeString:
    """A table row for each snapshot: its day, followers and the change from the day before."""
    return format_html_join(
        "\n",
        '          <tr><th scope="row">{}</th><td data-label="Followers">{}</td>'
        '<td data-label="Change">{}{}</td></tr>',
        (
            (
                day(snapshot.date, "D j M Y"),
                grouped(snapshot.followers),
                "+" if snapshot.follower_growth > 0 else "",
                grouped(snapshot.follower_growth),
            )
            for snapshot in snapshots
        ),
    )


def _video_name(video: Any, chars: int | None = None) -> str:
    name = video.title or video.video_id
    return shortened(name, chars) if chars else name


@register.simple_tag
def bar_rows(chart: Any, metric: str) -> SafeString:
    """A labelled bar for each video of a bar chart (apps.analytics.selectors.BarChart)."""
    metric, width, thickness = escape(metric), chart.width, chart.thickness
    rows = []
    for bar in chart.bars:
        name, short, value = (
            escape(_video_name(bar.video)),
            escape(_video_name(bar.video, 34)),
            grouped(bar.value),
        )
        rows.append(
            '  <g class="bar-row">\n'
            f'    <text class="bar-label" x="0" y="{bar.label_y}">{short}</text>\n'
            f'    <text class="bar-value" x="{width}" y="{bar.label_y}" text-anchor="end">{value}</text>\n'
            f'    <rect class="bar-track" x="0" y="{bar.bar_y}" width="{width}" height="{thickness}" rx="3">'
            "</rect>\n"
            f'    <rect class="bar {metric}" x="0" y="{bar.bar_y}" width="{bar.length}" height="{thickness}" '
            f'rx="3"><title>{name}: {value} {metric}</title></rect>\n'
            "  </g>\n"
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped)


@register.simple_tag(takes_context=True)
def video_rows(context: template.Context, videos: Iterable[Any]) -> SafeString:
    """A table row for each video: its name (linked to its post when Postline published it) and
    its counts."""
    detail = id_urls_for(context, "posts:detail")
    rows = []
    for video in videos:
        name = escape(_video_name(video))
        if video.post_id and detail:
            name = f'<a href="{detail(video.post_id)}">{name}</a>'
        rows.append(
            f'        <tr>\n          <th scope="row">{name}</th>\n'
            f'          <td data-label="Views">{grouped(video.views)}</td>'
            f'<td data-label="Likes">{grouped(video.likes)}</td>'
            f'<td data-label="Comments">{grouped(video.comments)}</td>'
            f'<td data-label="Shares">{grouped(video.shares)}</td>\n        </tr>\n'
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped)


@register.simple_tag
def account_options(accounts: Iterable[Any], shown: Any) -> SafeString:
    options = []
    for choice in accounts:
        selected = " selected" if shown is not None and choice.pk == shown.pk else ""
        label = f" ({escape(choice.client_label)})" if choice.client_label else ""
        options.append(f'<option value="{choice.pk}"{selected}>{escape(str(choice))}{label}</option>')
    return mark_safe("".join(options))  # noqa: S308 (every value escaped)
