"""Recording actions in the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import HttpRequest

from apps.audit.middleware import current_request
from apps.audit.models import AuditLog
from apps.common.client_ip import client_ip

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|authorization|cookie|code_verifier", re.I)


def redact(changes: Any) -> Any:
    """Replace the value of every key that names a secret, at any depth."""
    if isinstance(changes, Mapping):
        return {
            str(key): REDACTED if _SECRET_KEY.search(str(key)) else redact(value)
            for key, value in changes.items()
        }
    if isinstance(changes, (list, tuple)):
        return [redact(item) for item in changes]
    if isinstance(changes, (str, int, float, bool)) or changes is None:
        return changes
    return str(changes)


def _account_id(obj: models.Model) -> Any:
    """The TikTok account an object belongs to (the account itself, or a post's account)."""
    if obj._meta.label_lower == "accounts.tiktokaccount":
        return obj.pk
    return getattr(obj, "account_id", None)


def audit_record(
    *,
    action: str,
    actor: Any = None,
    obj: models.Model | None = None,
    request: HttpRequest | None = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditLog:
    """Append one entry. `actor` None means the system acted; secrets in `changes` are redacted."""
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    entry = AuditLog(
        action=action,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        changes=redact(dict(changes or {})),
    )
    if obj is not None:
        entry.object_type = obj._meta.label_lower
        entry.object_id = str(obj.pk)
        entry.object_repr = str(obj)[:200]
        entry.account_id = _account_id(obj)
    if request is not None:
        entry.ip = client_ip(request)
        entry.user_agent = request.META.get("HTTP_USER_AGENT", "")[:500]
    entry.save(force_insert=True)
    return entry


# --- The agency admin ---

ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}
_admin_entries_recorded_by_caller: ContextVar[bool] = ContextVar(
    "admin_entries_recorded_by_caller", default=False
)


@contextmanager
def admin_entries_recorded_by_caller() -> Iterator[None]:
    """While inside, the admin's log entries are not audited one by one: the caller records them.

    For Django's bulk delete, which writes the log entries of more than one object with
    bulk_create, so no post_save (and no audit_admin_log_entry) happens for them.
    """
    token = _admin_entries_recorded_by_caller.set(True)
    try:
        yield
    finally:
        _admin_entries_recorded_by_caller.reset(token)


def audit_admin_log_entry(*, log_entry: LogEntry) -> AuditLog | None:
    """Audit an add, change or delete the agency admin logged (as admin.added/changed/deleted),
    with the admin's own message ("Changed caption."). Django logs a deletion before it deletes,
    so the object is still there to name."""
    if _admin_entries_recorded_by_caller.get() or log_entry.action_flag not in ADMIN_ACTIONS:
        return None
    changes = {"admin_message": log_entry.get_change_message()}
    try:
        obj = log_entry.get_edited_object()
    except (ObjectDoesNotExist, AttributeError):  # gone already, or its model is no more
        obj = None
        changes.update(object_id=str(log_entry.object_id), object=log_entry.object_repr)
    return audit_record(
        action=ADMIN_ACTIONS[log_entry.action_flag],
        actor=log_entry.user,
        obj=obj,
        request=current_request(),
        changes=changes,
    )


def audit_admin_deletions(*, objects: Iterable[models.Model], request: HttpRequest) -> None:
    """Audit each object an admin bulk action deleted (admin.deleted)."""
    for obj in objects:
        audit_record(
            action="admin.deleted",
            obj=obj,
            request=request,
            changes={"admin_message": "Deleted with the bulk action."},
        )
