"""The composer's "Add to queue": the next free slot of an account's posting queue.

The queues (apps.queues) stand on a floor above the posts, so they register their reservation
here at start-up (QueuesConfig.ready) instead of the composer importing them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from apps.accounts.models import TikTokAccount


@dataclass(frozen=True)
class QueueSlotChoice:
    """Where "Add to queue" puts a post: the slot's instant and the zone it is read in."""

    at: dt.datetime
    time_zone: str


# (account, by) → a context manager that holds the account's queue while the post is saved and
# yields its next free slot (None: no free slot).
Reserve = Callable[..., AbstractContextManager[QueueSlotChoice | None]]
_reserve: Reserve | None = None


def no_free_slot(account: TikTokAccount) -> str:
    return (
        f"{account} has no free slot in its posting queue. Add weekly slots on its queue page "
        "(Queues), or choose a time and press Schedule."
    )


def queue_register(reserve: Reserve) -> None:
    global _reserve  # set once, at start-up
    _reserve = reserve


def queue_reserve_next_slot(
    *, account: TikTokAccount, by: Any
) -> AbstractContextManager[QueueSlotChoice | None]:
    """Hold `account`'s queue and yield its next free slot, in a transaction the caller saves
    the post in (two people adding to the queue at once get two different slots)."""
    if _reserve is None:
        raise RuntimeError("No posting queue is installed (apps.queues).")
    return _reserve(account=account, by=by)
