"""URLs reversed once instead of on every use. A list of thirty posts spent more on reversing
their links (`{% url %}` resolves the name, checks and quotes the arguments each time) than on
reading the posts, and every page's navigation reversed twenty names."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

_PLACEHOLDER = str(uuid.UUID(int=0))

IdUrl = Callable[[Any], str]


def id_urls(name: str) -> IdUrl | None:
    """For a URL whose one argument is a UUID (`<uuid:pk>`): a function from an id to what
    `reverse(name, args=[id])` gives; None where the site has no such URL (the public one)."""
    try:
        pattern = reverse(name, args=[_PLACEHOLDER])
    except NoReverseMatch:
        return None
    return lambda pk: pattern.replace(_PLACEHOLDER, _id(pk))


def _id(pk: Any) -> str:
    """An id as the URL writes it; anything that is not a UUID is refused (ValueError)."""
    return str(pk) if type(pk) is uuid.UUID else str(uuid.UUID(str(pk)))


def named_url(name: str) -> str:
    """`reverse(name)` for a URL without arguments, remembered for each URLconf (the agencies'
    and the public site's differ) and script prefix; "" where the site has no such URL, as
    `{% url name as variable %}` leaves it."""
    return _named_url(get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), name)


@functools.cache
def _named_url(urlconf: Any, prefix: str, name: str) -> str:
    try:
        return reverse(name, urlconf=urlconf)
    except NoReverseMatch:
        return ""


@receiver(setting_changed)
def _forget_named_urls(*, setting: str, **kwargs: Any) -> None:
    """URLconfs changed in tests: Django forgets its resolvers then, and this its names."""
    if setting == "ROOT_URLCONF":
        _named_url.cache_clear()
