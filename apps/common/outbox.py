"""The events other slices announce, for the notifications slice to write down.

Posts, publishing, accounts and team sit below `apps.notifications` and never import it:
they call `notification_emit` inside the transaction that makes the change, and the
notifications slice registers, at start-up (`AppConfig.ready`), the writer that turns the
event into outbox rows in that same transaction. An event is committed with its change or
not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models


@dataclass(frozen=True)
class Emitted:
    """One thing that happened: `kind` names it, `obj` is what it happened to (a post, an account,
    an invitation), `actor` who did it (None for the worker or TikTok), `key` what makes it this
    occurrence and no other (the same key twice is one event)."""

    kind: str
    obj: models.Model
    key: str
    actor: Any = None
    data: dict[str, Any] = field(default_factory=dict)


Writer = Callable[[Emitted], None]
_writers: list[Writer] = []


def outbox_register(writer: Writer) -> None:
    if writer not in _writers:
        _writers.append(writer)


def notification_emit(*, kind: str, obj: models.Model, key: str, actor: Any = None, **data: Any) -> None:
    """Announce an event; call it inside the transaction that makes the change it tells of."""
    if not _writers:
        raise ImproperlyConfigured("No notification writer is registered (is apps.notifications installed?)")
    emitted = Emitted(kind=kind, obj=obj, key=key, actor=actor, data=data)
    for writer in _writers:
        writer(emitted)
