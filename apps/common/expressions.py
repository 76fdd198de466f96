"""Database expressions used by constraints."""

from django.db import models


class Utf16Length(models.Func):
    """Length of a text in UTF-16 code units, TikTok's measure for captions.

    Characters outside the Basic Multilingual Plane (most emoji) count twice.
    """

    template = (
        "(char_length(%(expressions)s) + "
        "char_length(regexp_replace(%(expressions)s, '[^\\U00010000-\\U0010FFFF]', '', 'g')))"
    )
    output_field = models.IntegerField()


def utf16_length(text: str) -> int:
    """The same measure in Python."""
    return len(text.encode("utf-16-le")) // 2
