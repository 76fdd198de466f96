"""The audit log records who did what, redacts secrets, and cannot be rewritten."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.audit.services import audit_record
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, REFERENCE_SCHEMA, client_for
from tests.factories import TikTokAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_entry_keeps_actor_ip_agent_and_redacts_secrets(in_alpha: Agency) -> None:
    actor = UserFactory(email="editor@alpha.example")
    account = TikTokAccountFactory(username="clientbrand")
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox/140")
    request.user = actor

    entry = audit_record(
        action="account.connected",
        obj=account,
        request=request,
        changes={
            "status": ["needs_reauth", "active"],
            "access_token": "act.x",
            "nested": {"client_secret": "s"},
        },
    )

    stored = AuditLog.objects.get(pk=entry.pk)
    assert stored.actor == actor and stored.actor_email == "editor@alpha.example"
    assert stored.ip == "203.0.113.9" and stored.user_agent == "Firefox/140"
    assert stored.object_type == "accounts.tiktokaccount" and stored.object_id == str(account.pk)
    assert stored.object_repr == "@clientbrand"
    assert stored.changes == {
        "status": ["needs_reauth", "active"],
        "access_token": "[redacted]",
        "nested": {"client_secret": "[redacted]"},
    }


def test_system_entries_have_no_actor_or_ip(in_alpha: Agency) -> None:
    entry = audit_record(action="post.published")
    assert entry.actor is None and entry.ip is None and entry.actor_email == ""


@pytest.mark.parametrize("schema", ["alpha", REFERENCE_SCHEMA], ids=["cloned schema", "migrated schema"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditlog SET action = 'rewritten'",
        "DELETE FROM audit_auditlog",
        "TRUNCATE audit_auditlog",
    ],
    ids=["update", "delete", "truncate"],
)
def test_database_refuses_to_change_or_remove_entries(schema: str, statement: str) -> None:
    with schema_context(schema):
        entry = audit_record(action="settings.changed")
        with connection.cursor() as cursor:
            # Fire the insert's deferred FK checks now, so TRUNCATE meets our trigger, not them.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with (
            pytest.raises(DatabaseError, match="cannot be changed or removed"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        assert AuditLog.objects.get(pk=entry.pk).action == "settings.changed"


def test_orm_delete_is_refused_too(in_alpha: Agency) -> None:
    entry = audit_record(action="login.succeeded")
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_sign_in_success_and_failure_are_audited(alpha: Agency) -> None:
    client = client_for(alpha)
    client.post(
        "/login/", {"username": "owner@shared.example", "password": "wrong"}, REMOTE_ADDR="198.51.100.7"
    )
    client.post(
        "/login/",
        {"username": "owner@shared.example", "password": OWNER_PASSWORD},
        REMOTE_ADDR="198.51.100.7",
    )

    with schema_context(alpha.schema_name):
        failed = AuditLog.objects.get(action="login.failed")
        succeeded = AuditLog.objects.get(action="login.succeeded")
        assert failed.actor is None
        assert failed.changes == {"email": "owner@shared.example"}
        assert failed.ip == "198.51.100.7"
        assert succeeded.actor_email == "owner@shared.example" and succeeded.ip == "198.51.100.7"
        assert succeeded.actor.last_login_ip == "198.51.100.7"
