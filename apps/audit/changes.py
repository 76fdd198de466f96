"""How an entry's changes read, on the audit page and in its CSV export.

The services write `changes` as JSON. A change of one value is written {"old": ..., "new": ...}
or, in older and terser entries, as an [old, new] pair; a list of things (the scopes granted,
the accounts an invitation gives) is written as a plain list. Only a genuine change reads
"old → new"; a list reads as its items separated by commas.
"""

from __future__ import annotations

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


def _readable(value: Any, words: Mapping[str, str]) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, str):
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


def change_lines(changes: Any, action: str = "") -> list[tuple[str, str]]:
    """Each key of `changes` with how its value reads: "old → new" for a change, else the value."""
    action_words = _VOCABULARIES.get(action, {})
    if not isinstance(changes, dict):
        return [("", _readable(changes, action_words))] if changes else []
    lines = []
    for key, value in changes.items():
        words = {**_KEY_VOCABULARIES.get(str(key), {}), **action_words}
        if _is_change(str(key), value):
            old, new = (value["old"], value["new"]) if isinstance(value, dict) else value
            text = f"{_readable(old, words)}{ARROW}{_readable(new, words)}"
        else:
            text = _readable(value, words)
        lines.append((_key(key), text))
    return lines


def changes_text(changes: Any, action: str = "") -> str:
    """The changes on one line, "key: text; key: text", for the CSV export."""
    return "; ".join(f"{key}: {text}" if key else text for key, text in change_lines(changes, action))
