"""`{% post_threads post %}` on the post page and `{% review_thread post token %}` on the client
review page: the comment threads their reader may see, without the pages' views (on floors
below this app) knowing about comments."""

from __future__ import annotations

from typing import Any

from django import template

from apps.comments.models import Visibility
from apps.comments.selectors import visibilities_for
from apps.comments.views import link_thread, team_thread
from apps.posts.models import Post

register = template.Library()


@register.inclusion_tag("comments/_threads.html", takes_context=True)
def post_threads(context: Any, post: Post) -> dict[str, Any]:
    """The post page: the internal thread for the team, and the client thread."""
    user = context["request"].user
    threads = [team_thread(user, post, v) for v in visibilities_for(user)]
    return {"threads": threads, "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("comments/_threads.html", takes_context=True)
def review_thread(context: Any, post: Post, token: str = "") -> dict[str, Any]:
    """The review page: the client thread only, through the link (`token`) or signed in."""
    if token:
        thread = link_thread(token, post)
    else:
        thread = team_thread(context["request"].user, post, Visibility.CLIENT)
    return {"threads": [thread], "csrf_token": context.get("csrf_token")}
