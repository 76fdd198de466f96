"""Text as the pages write it."""

from __future__ import annotations

from django.utils.text import Truncator

ELLIPSIS = "…"


def shortened(text: str, chars: int) -> str:
    """`text` cut to `chars` characters with an ellipsis, as `truncatechars` writes it. Most texts
    are short enough and are given back as they are; ASCII text, which has no combining
    characters and nothing to normalise, is cut by slicing (Truncator walks every character: it
    was a tenth of a busy calendar week's time); the rest goes through Truncator."""
    if len(text) <= chars:
        return text
    if text.isascii() and chars > 0:
        return text[: chars - 1] + ELLIPSIS
    return Truncator(text).chars(chars)
