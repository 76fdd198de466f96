"""Text as the pages write it."""

from __future__ import annotations

from django.utils.text import Truncator


def shortened(text: str, chars: int) -> str:
    """`text` cut to `chars` characters with an ellipsis, as `truncatechars` writes it; most texts
    are short enough, and are given back without Truncator's work."""
    return Truncator(text).chars(chars) if len(text) > chars else text
