"""The audit log records who did what, redacts secrets, and cannot be rewritten."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.services import account_authorization_removed
from apps.audit.models import AuditLog
from apps.audit.services import audit_record
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import PostStatus
from apps.posts.services import post_mark_published, post_record_webhook, post_retry, post_schedule
from apps.publishing.services import post_publish
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, REFERENCE_SCHEMA, client_for
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory
from tests.test_publishing import claim, publish_and_poll, scheduled

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


# --- Each action of the list writes its entry (the ones not asserted elsewhere) ---


def actions_on(obj: Any) -> list[str]:
    return list(
        AuditLog.objects.filter(object_id=str(obj.pk)).order_by("created_at").values_list("action", flat=True)
    )


def test_publishing_failures_are_audited_as_the_systems_doing(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", "spam_risk", count=1)

    post_publish(post_id=str(post.pk))

    failed = AuditLog.objects.get(action="post.failed", object_id=str(post.pk))
    assert failed.actor is None and failed.account_id == post.account_id
    assert failed.changes["status"] == [PostStatus.PUBLISHING, PostStatus.FAILED]
    assert failed.changes["code"] == "spam_risk_too_many_posts"


def test_needs_attention_resolved_by_a_retry_then_published(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post whose outcome at TikTok nobody knows
    post = claim(scheduled(tiktok))
    tiktok.add_fault("init", "drop", count=1)
    post_publish(post_id=str(post.pk))
    manager = UserFactory(email="manager@alpha.example")

    # When a person retries it, and it goes out
    published = publish_and_poll(claim(post_retry(post=post, by=manager)))

    assert published.status == PostStatus.PUBLISHED
    assert actions_on(post) == [
        "post.scheduled",
        "post.needs_attention",
        "post.attention_resolved",
        "post.uploaded",
        "post.published",
    ]
    resolved = AuditLog.objects.get(action="post.attention_resolved")
    assert resolved.actor_email == "manager@alpha.example"
    assert resolved.changes == {"resolution": "retried", "status": ["needs_attention", "scheduled"]}


def test_needs_attention_resolved_by_marking_the_post_published(in_alpha: Agency) -> None:
    post = PostFactory(status=PostStatus.NEEDS_ATTENTION, publish_id="v_inbox_file~v2.1")
    post_mark_published(post=post, published_post_id="7" * 19, by=UserFactory(email="ed@alpha.example"))

    resolved = AuditLog.objects.get(action="post.attention_resolved", object_id=str(post.pk))
    assert resolved.actor_email == "ed@alpha.example"
    assert resolved.changes == {"resolution": "marked_published", "published_post_id": "7" * 19}


@pytest.mark.parametrize(
    ("event", "content", "action"),
    [
        ("post.publish.complete", {}, "post.published"),
        ("post.publish.failed", {"reason": "spam_risk_too_many_posts"}, "post.failed"),
    ],
)
def test_publish_outcomes_told_by_webhook_are_audited(
    in_alpha: Agency, event: str, content: dict[str, str], action: str
) -> None:
    post = PostFactory(status=PostStatus.PROCESSING, publish_id="v_pub_file~v2-1.9")

    post_record_webhook(
        open_id=post.account.open_id, event=event, content={"publish_id": post.publish_id, **content}
    )

    entry = AuditLog.objects.get(action=action, object_id=str(post.pk))
    assert entry.actor is None and entry.changes["source"] == event


def test_rescheduling_is_audited(in_alpha: Agency) -> None:
    post = PostFactory(status=PostStatus.SCHEDULED)
    later = timezone.now() + dt.timedelta(days=2)

    post_schedule(
        post=post, scheduled_at=later, time_zone="Europe/Paris", by=UserFactory(email="ed@alpha.example")
    )

    entry = AuditLog.objects.get(action="post.rescheduled", object_id=str(post.pk))
    assert entry.actor_email == "ed@alpha.example"


def test_creator_removing_our_access_is_audited(in_alpha: Agency) -> None:
    account = TikTokAccountFactory()

    account_authorization_removed(open_id=account.open_id)

    entry = AuditLog.objects.get(action="account.authorization_removed")
    assert entry.actor is None and entry.account_id == account.pk
    assert entry.changes == {"status": ["active", "revoked"]}
