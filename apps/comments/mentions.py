"""Finding `@handles` in a comment's text: `@ada`, `@ada.lovelace` (an email's local part or a
name without its spaces) or a whole address, `@ada@agency.example`. Who a handle names is decided
in apps.comments.services, among the people who may see the post."""

from __future__ import annotations

import re
from collections.abc import Iterator

# Not after a word character or another @ (an address in the text is not a mention).
MENTION = re.compile(r"(?<![\w@])@([\w.%+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


def _matches(body: str) -> Iterator[tuple[int, int, str]]:
    for match in MENTION.finditer(body):
        handle = match.group(1).rstrip(".-")  # "thanks @ada." ends a sentence, not the handle
        if handle:
            start = match.start()
            yield start, start + 1 + len(handle), handle


def find_handles(body: str) -> list[str]:
    """The handles in `body`, in order, each once (compared without case)."""
    seen: dict[str, str] = {}
    for _, _, handle in _matches(body):
        seen.setdefault(handle.lower(), handle)
    return list(seen.values())


def split_mentions(body: str, handles: set[str]) -> list[tuple[str, bool]]:
    """`body` as (text, is_mention) pieces, the mentions being the `@handle`s in `handles`
    (lower case). The pieces joined are `body`."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for start, end, handle in _matches(body):
        if handle.lower() not in handles:
            continue
        if start > at:
            pieces.append((body[at:start], False))
        pieces.append((body[start:end], True))
        at = end
    if at < len(body):
        pieces.append((body[at:], False))
    return pieces
