"""URLs as `{% url %}` writes them, reversed once (see apps.common.links); "" where the site has
no such URL, as `{% url ... as variable %}` leaves it.

- `{% id_url 'posts:detail' post.pk %}`, for URLs whose one argument is a UUID: reversed once
  per rendering instead of once per row.
- `{% named_url 'home' %}`, for URLs without arguments: reversed once per URLconf."""

from __future__ import annotations

from typing import Any

from django import template

from apps.common import links
from apps.common.links import IdUrl, id_urls

register = template.Library()


def id_urls_for(context: template.Context, name: str) -> IdUrl | None:
    """`id_urls(name)`, kept for the rest of the rendering, included templates too (each of
    those gets a render context of its own above the first one, which lasts the rendering)."""
    first: Any = context.render_context.dicts[0]  # typed as holding strings only
    cache: dict[str, IdUrl | None] = first.setdefault("id_urls", {})
    if name not in cache:
        cache[name] = id_urls(name)
    urls: IdUrl | None = cache[name]
    return urls


def row_links(context: template.Context, name: str) -> IdUrl:
    """`id_urls_for`, writing "" where the site has no such URL (as `{% id_url %}` does): for
    the template tags that write a list's rows in Python."""
    return id_urls_for(context, name) or _no_link


def _no_link(pk: Any) -> str:
    return ""


@register.simple_tag(takes_context=True)
def id_url(context: template.Context, name: str, pk: Any) -> str:
    """No link (an empty string) without an id either: a video not posted from Postline has none."""
    urls = id_urls_for(context, name)
    return "" if urls is None or pk is None or pk == "" else urls(pk)


@register.simple_tag
def named_url(name: str) -> str:
    return links.named_url(name)
