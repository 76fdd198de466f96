"""Keyset ("cursor") pagination: a page is the rows after (or before) the last row seen, in an
order that never ties, so it costs the same on page 1 and page 1,000 (no OFFSET, no COUNT) and
no row is lost or shown twice when rows are added or removed between two pages.

    page = keyset_page(posts, POST_LIST_ORDER, request.GET, size=25)
    page.rows, page.next_query, page.previous_query  # ?after=… / ?before=… (None at an end)

An order (`Keyset`) names columns or annotations of the queryset, all ascending or all
descending, the last one unique (the id), none of them NULL. The page asks one query: its rows
and one more, which says whether there is a next (or previous) page. PostgreSQL reads it from an
index on the same columns in the same order with a row comparison, `(a, b, id) < (x, y, z)`.
A cursor is the position of a row (its key values), not a signed secret: the queryset it is
applied to already holds only what the person may see. A cursor that cannot be read means the
first page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BooleanField, F, Func, QuerySet, Value
from django.http import QueryDict

AFTER = "after"
BEFORE = "before"


@dataclass(frozen=True)
class Keyset:
    """An order for keyset pages: `keys` are names of fields or annotations, the last unique."""

    keys: tuple[str, ...]
    descending: bool = False

    def order(self) -> list[Any]:
        return [F(key).desc() if self.descending else F(key).asc() for key in self.keys]

    def reversed(self) -> list[Any]:
        return [F(key).asc() if self.descending else F(key).desc() for key in self.keys]

    def position(self, row: Any) -> list[Any]:
        return [getattr(row, key) for key in self.keys]


class _RowComparison(Func):
    """`(a, b, c) < (x, y, z)`: SQL's row comparison, which an index on (a, b, c) answers."""

    output_field = BooleanField()

    def __init__(self, columns: Sequence[str], operator: str, values: Sequence[Any]) -> None:
        super().__init__(*[F(column) for column in columns], *[Value(value) for value in values])
        self.operator = operator
        self.width = len(columns)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        parts, params = [], []
        for expression in self.source_expressions:
            sql, more = compiler.compile(expression)
            parts.append(sql)
            params.extend(more)
        left, right = ", ".join(parts[: self.width]), ", ".join(parts[self.width :])
        return f"({left}) {self.operator} ({right})", params


def cursor_encode(values: Sequence[Any]) -> str:
    """A row's position as a URL-safe token."""
    typed: list[list[Any]] = []
    for value in values:
        if isinstance(value, dt.datetime):
            typed.append(["t", value.isoformat()])
        elif isinstance(value, uuid.UUID):
            typed.append(["u", value.hex])
        elif isinstance(value, bool | int):
            typed.append(["i", int(value)])
        elif isinstance(value, str):
            typed.append(["s", value])
        else:
            raise TypeError(f"A keyset key cannot be {type(value).__name__}: {value!r}")
    raw = json.dumps(typed, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(token: str, width: int) -> list[Any] | None:
    """The position a token names, or None for anything that is not one of ours."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        typed = json.loads(raw)
        if not isinstance(typed, list) or len(typed) != width:
            return None
        values: list[Any] = []
        for kind, value in typed:
            if kind == "t":
                moment = dt.datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    return None
                values.append(moment)
            elif kind == "u":
                values.append(uuid.UUID(hex=value))
            elif (kind == "i" and type(value) is int) or (kind == "s" and isinstance(value, str)):
                values.append(value)
            else:
                return None
        return values
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


@dataclass
class KeysetPage[T]:
    rows: list[T]
    next_cursor: str | None = None
    previous_cursor: str | None = None
    # The rest of the query string (the filters), kept on the links.
    base_query: QueryDict = field(default_factory=QueryDict)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    def _query(self, name: str, cursor: str) -> str:
        query = self.base_query.copy()
        query[name] = cursor
        return query.urlencode()

    @property
    def next_query(self) -> str | None:
        """The query string of the next page (the filters kept), or None on the last."""
        return self._query(AFTER, self.next_cursor) if self.next_cursor else None

    @property
    def previous_query(self) -> str | None:
        return self._query(BEFORE, self.previous_cursor) if self.previous_cursor else None

    @property
    def first_query(self) -> str:
        """The first page with the same filters."""
        return self.base_query.urlencode()


def keyset_page(queryset: QuerySet[Any], order: Keyset, query: QueryDict, *, size: int) -> KeysetPage[Any]:
    """The page of `queryset` that `query` (the request's GET) asks for: `after=<cursor>` (the
    rows after that position), `before=<cursor>` (the rows before it, for "previous") or neither
    (the first page). One query."""
    width = len(order.keys)
    base = query.copy()
    after = cursor_decode(base.pop(AFTER, [""])[-1], width)
    before = cursor_decode(base.pop(BEFORE, [""])[-1], width)
    base.pop("page", None)  # the old numbered pages' links
    forward, backward = ("<", ">") if order.descending else (">", "<")
    if before is not None and after is None:
        earlier = queryset.filter(_RowComparison(order.keys, backward, before))
        rows = list(earlier.order_by(*order.reversed())[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        return KeysetPage(
            rows=rows,
            previous_cursor=cursor_encode(order.position(rows[0])) if more and rows else None,
            next_cursor=cursor_encode(order.position(rows[-1]) if rows else before),
            base_query=base,
        )
    if after is not None:
        queryset = queryset.filter(_RowComparison(order.keys, forward, after))
    rows = list(queryset.order_by(*order.order())[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=cursor_encode(order.position(rows[-1])) if more else None,
        previous_cursor=cursor_encode(order.position(rows[0]) if rows else after)
        if after is not None
        else None,
        base_query=base,
    )
