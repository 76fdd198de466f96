"""Links to post pages for lists of posts: the post page's URL reversed once, each post's link
made from it (a list of thirty posts spent more on reversing URLs than on reading the posts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.urls import NoReverseMatch, reverse

_PLACEHOLDER = str(uuid.UUID(int=0))

PostUrl = Callable[[Any], str]


def post_urls() -> PostUrl | None:
    """A function from a post's id to its page's URL, as `reverse("posts:detail", args=[pk])`
    gives it; None where the site has no post pages (the public one)."""
    try:
        pattern = reverse("posts:detail", args=[_PLACEHOLDER])
    except NoReverseMatch:
        return None
    return lambda pk: pattern.replace(_PLACEHOLDER, str(uuid.UUID(str(pk))))
