"""`{% post_threads post %}` on the post page, and on the client review page
`{% client_threads items token as threads %}` then `{% review_thread threads post %}` for each
post: the comment threads their reader may see, without the pages' views (on floors
below this app) knowing about comments."""

from __future__ import annotations

from typing import Any

from django import template

from apps.comments.models import Visibility
from apps.comments.selectors import threads_of, visibilities_for
from apps.comments.views import Thread, link_thread, team_thread
from apps.posts.models import Post

register = template.Library()


@register.inclusion_tag("comments/_threads.html", takes_context=True)
def post_threads(context: Any, post: Post) -> dict[str, Any]:
    """The post page: the internal thread for the team, and the client thread."""
    user = context["request"].user
    threads = [team_thread(user, post, v) for v in visibilities_for(user)]
    return {"threads": threads, "csrf_token": context.get("csrf_token")}


@register.simple_tag(takes_context=True)
def client_threads(context: Any, items: list[Any], token: str = "") -> dict[Any, Thread]:
    """The review page's client threads, one per post of `items` (each with a `post`), read in
    two queries: through the link (`token`) or for the signed-in client reviewer."""
    posts = [item.post for item in items]
    comments = threads_of(posts, Visibility.CLIENT)
    if token:
        return {p.pk: link_thread(token, p, comments[p.pk]) for p in posts}
    user = context["request"].user
    return {p.pk: team_thread(user, p, Visibility.CLIENT, comments[p.pk]) for p in posts}


@register.inclusion_tag("comments/_threads.html", takes_context=True)
def review_thread(context: Any, threads: dict[Any, Thread], post: Post) -> dict[str, Any]:
    """The review page: the client thread of `post`, from `client_threads`."""
    return {"threads": [threads[post.pk]], "csrf_token": context.get("csrf_token")}
