"""Counts on the analytics page, which writes hundreds of them (a year of daily snapshots, twice).

- `{{ value|grouped }}`: a whole count with its thousands grouped ("12,345"), as
  `floatformat:"g"` writes it in English, without its decimal arithmetic (`floatformat` was a
  third of the page's rendering).
- `{% follower_dots chart %}` and `{% follower_rows snapshots %}`: the follower chart's dots and
  its table's rows, in the markup the template had (each day a dozen lookups and filters
  through the template engine), every value escaped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.template.defaultfilters import floatformat
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from apps.common.templatetags.days import day

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
