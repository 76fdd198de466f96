"""`{% post_url pk %}`: a post page's URL, as `{% url 'posts:detail' pk %}` writes it, reversed once
per rendering instead of once per post (see apps.posts.links); "" where the site has none."""

from __future__ import annotations

from typing import Any

from django import template

from apps.posts.links import PostUrl, post_urls

register = template.Library()


def post_urls_for(context: template.Context) -> PostUrl | None:
    """`post_urls()`, kept for the rest of the rendering."""
    cache = context.render_context
    if "post_urls" not in cache:
        cache["post_urls"] = post_urls()
    urls: PostUrl | None = cache["post_urls"]
    return urls


@register.simple_tag(takes_context=True)
def post_url(context: template.Context, pk: Any) -> str:
    urls = post_urls_for(context)
    return "" if urls is None else urls(pk)
