"""Database expressions: for constraints, and the database's clock."""

import datetime as dt

from django.db import connection, models


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


class ClockTimestamp(models.Func):
    """The database's current time (`clock_timestamp()`: the real time even inside a long
    transaction, unlike `now()`). Due times, backoffs and leases are measured on this one
    clock, so a process whose own clock is off cannot publish early or late."""

    template = "clock_timestamp()"
    output_field = models.DateTimeField()


def db_now() -> dt.datetime:
    """The database's clock, read now (see ClockTimestamp)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        value: dt.datetime = cursor.fetchone()[0]
    return value


def db_in(seconds: float) -> models.Expression:
    """That many seconds from now on the database's clock, as an expression to store."""
    return models.ExpressionWrapper(
        ClockTimestamp() + models.Value(dt.timedelta(seconds=seconds)),
        output_field=models.DateTimeField(),
    )
