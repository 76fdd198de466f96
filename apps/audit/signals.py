"""Audit entries for Django's own events (third-party signals): signing in, and the agency admin."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import connection
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name

from apps.audit.services import audit_admin_log_entry, audit_record
from apps.common.client_ip import client_ip
from apps.users.lockout import lock_for


@receiver(user_logged_in, dispatch_uid="audit_login_succeeded")
def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or getattr(request, "tenant", None) is None or request.tenant.is_public:  # type: ignore[attr-defined]
        return
    ip = client_ip(request)
    if ip and user.last_login_ip != ip:
        user.last_login_ip = ip
        user.save(update_fields=["last_login_ip"])
    audit_record(action="login.succeeded", actor=user, obj=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is None or getattr(request, "tenant", None) is None or request.tenant.is_public:  # type: ignore[attr-defined]
        return
    # The attempted email is kept (it is what an admin investigates); the password never is.
    audit_record(
        action="login.failed", request=request, changes={"email": str(credentials.get("username", ""))[:254]}
    )


@receiver(user_locked_out, dispatch_uid="audit_login_locked")
def on_locked_out(
    sender: Any, request: HttpRequest | None = None, username: str | None = None, **kwargs: Any
) -> None:
    """django-axes engaged a lock (once per lock: attempts refused by it are not announced)."""
    if request is None or getattr(request, "tenant", None) is None or request.tenant.is_public:  # type: ignore[attr-defined]
        return
    lock = lock_for(request, email=username)
    audit_record(
        action="login.locked",
        request=request,
        changes={
            "email": (username or "")[:254],
            "scope": lock.scope if lock else "email",
            "until": lock.until.isoformat() if lock else "",
        },
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_log_entry")
def on_admin_log_entry(
    sender: Any, instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    # The operators' admin (public schema) has no audit log; its actions on an agency are
    # recorded in the agency's own log by tenants.services.
    if not created or raw or connection.schema_name == get_public_schema_name():  # type: ignore[attr-defined]
        return
    audit_admin_log_entry(log_entry=instance)
