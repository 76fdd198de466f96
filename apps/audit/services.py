"""Recording actions in the audit log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import models
from django.http import HttpRequest

from apps.audit.models import AuditLog

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


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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
    if request is not None:
        entry.ip = client_ip(request)
        entry.user_agent = request.META.get("HTTP_USER_AGENT", "")[:500]
    entry.save(force_insert=True)
    return entry
