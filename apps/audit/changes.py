"""How an entry's changes read, on the audit page and in its CSV export.

The services write `changes` as JSON. A change of one value is written {"old": ..., "new": ...}
or, in older and terser entries, as an [old, new] pair; a list of things (the scopes granted,
the accounts an invitation gives) is written as a plain list. Only a genuine change reads
"old → new"; a list reads as its items separated by commas.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from apps.accounts.models import AccountStatus
from apps.accounts.permissions import Perm
from apps.posts.models import PostStatus
from apps.users.models import Role
from tenants.models import AgencyStatus

EMPTY = "—"
ARROW = " → "

# Keys whose list value is a set of things, never an [old, new] pair, whatever its length.
_LIST_KEYS = frozenset({"accounts", "fields", "granted", "removed", "scopes"})

# Values that read better as a word than as the code the services store, by action and by key.
_PERM_LABELS = {perm.value: perm.label for perm in Perm}
_VOCABULARIES: dict[str, Mapping[str, str]] = {"access.changed": _PERM_LABELS}
_STATUS_LABELS = {
    str(value): str(label)
    for choices in (AgencyStatus, AccountStatus, PostStatus)
    for value, label in choices.choices
}
_KEY_VOCABULARIES: dict[str, Mapping[str, str]] = {
    "status": _STATUS_LABELS,
    "role": {str(value): str(label) for value, label in Role.choices},
}


def _is_change(key: str, value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"old", "new"}
    return isinstance(value, list) and len(value) == 2 and key not in _LIST_KEYS


def _moment(value: str) -> dt.datetime | None:
    """An ISO 8601 date and time with its offset, as the services record times; else None."""
    if len(value) < 19 or value[10] != "T":
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _readable(value: Any, words: Mapping[str, str]) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, str):
        moment = _moment(value)
        if moment is not None:  # one zone for every time on the page, to the minute
            utc = moment.astimezone(dt.UTC)
            return f"{utc.day} {utc:%b %Y, %H:%M} UTC"
        return words.get(value, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_readable(item, words) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{_key(key)}: {_readable(item, words)}" for key, item in value.items())
    return json.dumps(value, ensure_ascii=False)


def _key(key: Any) -> str:
    return str(key).replace("_", " ")


def change_lines(
    changes: Any, action: str = "", accounts: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Each key of `changes` with how its value reads: "old → new" for a change, else the value.
    `accounts` names account ids ({id: "@username"}) wherever an entry recorded one."""
    action_words = {**(accounts or {}), **_VOCABULARIES.get(action, {})}
    if not isinstance(changes, dict):
        return [("", _readable(changes, action_words))] if changes else []
    lines = []
    for key, value in changes.items():
        words = {**_KEY_VOCABULARIES.get(str(key), {}), **action_words}
        if _is_change(str(key), value):
            old, new = (value["old"], value["new"]) if isinstance(value, dict) else value
            before, after = _readable(old, words), _readable(new, words)
            # The same before and after (a time in two zones, a status kept) is no change.
            text = after if before == after else f"{before}{ARROW}{after}"
        else:
            text = _readable(value, words)
        lines.append((_key(key), text))
    return lines


def changes_text(changes: Any, action: str = "", accounts: Mapping[str, str] | None = None) -> str:
    """The changes on one line, "key: text; key: text", for the CSV export."""
    lines = change_lines(changes, action, accounts)
    return "; ".join(f"{key}: {text}" if key else text for key, text in lines)
