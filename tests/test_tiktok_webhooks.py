"""TikTok webhooks: signed, current, applied once, routed to the right agency."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context
from psycopg import sql

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.posts.models import AttemptKind, Post, PublishAttempt
from apps.tiktok.models import TikTokRoute, WebhookDelivery
from tenants.models import Agency
from tests.conftest import client_for
from tests.factories import PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

OPEN_ID = "fake-open-public-001"


def deliver(
    event: str,
    content: dict[str, object],
    *,
    t: int | None = None,
    secret: str | None = None,
    open_id: str = OPEN_ID,
) -> int:
    t = int(time.time()) if t is None else t
    body = json.dumps(
        {
            "client_key": settings.TIKTOK_CLIENT_KEY,
            "event": event,
            "create_time": t,  # a replay is the same body, whenever it is sent
            "user_openid": open_id,
            "content": json.dumps(content),
        }
    ).encode()
    key = (secret or settings.TIKTOK_CLIENT_SECRET).encode()
    signature = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    client = client_for(None)
    client.raise_request_exception = False
    response = client.post(
        "/webhooks/tiktok/",
        body,
        content_type="application/json",
        HTTP_TIKTOK_SIGNATURE=f"t={t},s={signature}",
    )
    return response.status_code


@pytest.fixture
def connected(alpha: Agency) -> TikTokAccount:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(open_id=OPEN_ID)
    TikTokRoute.objects.create(open_id=OPEN_ID, agency=alpha)
    return account


def account_status(agency: Agency, account: TikTokAccount) -> str:
    with schema_context(agency.schema_name):
        return TikTokAccount.objects.get(pk=account.pk).status


def test_authorization_removed_revokes_the_account(alpha: Agency, connected: TikTokAccount) -> None:
    assert deliver("authorization.removed", {"reason": 1}) == 200
    assert account_status(alpha, connected) == AccountStatus.REVOKED


@pytest.mark.parametrize(
    ("secret", "age", "why"),
    [
        ("not-the-secret", 0, "bad signature"),
        (None, 3600, "stale timestamp"),
        (None, -3600, "future timestamp"),
    ],
)
def test_bad_signature_or_timestamp_changes_nothing(
    alpha: Agency, connected: TikTokAccount, secret: str | None, age: int, why: str
) -> None:
    status = deliver("authorization.removed", {}, t=int(time.time()) - age, secret=secret)
    assert status == 400, why
    assert account_status(alpha, connected) == AccountStatus.ACTIVE
    assert not WebhookDelivery.objects.exists()


def test_replayed_webhook_is_applied_once(alpha: Agency, connected: TikTokAccount) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(account=connected, status="processing", publish_id="v_pub_file~v2-1.123")
    t = int(time.time())
    for _ in range(2):
        assert deliver("post.publish.complete", {"publish_id": "v_pub_file~v2-1.123"}, t=t) == 200
    assert WebhookDelivery.objects.count() == 1
    with schema_context(alpha.schema_name):
        recorded = PublishAttempt.objects.filter(post=post, kind=AttemptKind.WEBHOOK)
        assert recorded.count() == 1
        assert recorded.get().error_message == "post.publish.complete"


def test_webhook_reaches_only_agencies_that_connected_the_creator(
    alpha: Agency, beta: Agency, connected: TikTokAccount
) -> None:
    with schema_context(beta.schema_name):
        other = TikTokAccountFactory(open_id="fake-open-private-002")
    assert deliver("authorization.removed", {}, open_id="fake-open-private-002") == 200
    assert account_status(beta, other) == AccountStatus.ACTIVE  # beta never registered that route
    assert account_status(alpha, connected) == AccountStatus.ACTIVE


def test_malformed_body_is_refused() -> None:
    response = client_for(None).post(
        "/webhooks/tiktok/", b"not json", content_type="application/json", HTTP_TIKTOK_SIGNATURE="garbage"
    )
    assert response.status_code == 400


def test_a_webhook_that_fails_to_apply_is_applied_when_tiktok_delivers_it_again(
    alpha: Agency, connected: TikTokAccount
) -> None:
    # Given a post being processed, and an agency schema whose posts table refuses every change
    # for now (a real database failure while the event is applied)
    with schema_context(alpha.schema_name):
        post = PostFactory(account=connected, status="processing", publish_id="v_pub_file~v2-1.456")
    table = sql.Identifier(alpha.schema_name, "posts_post")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION pg_temp.refuse_changes() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'could not extend file: no space left on device'; END $$"
        )
        cursor.execute(
            sql.SQL(
                "CREATE TRIGGER refuse_changes BEFORE UPDATE ON {} FOR EACH ROW "
                "EXECUTE FUNCTION pg_temp.refuse_changes()"
            ).format(table)
        )
    body = {"publish_id": "v_pub_file~v2-1.456"}
    t = int(time.time())

    # When TikTok delivers the completion, it is told to deliver it again, and nothing was kept
    assert deliver("post.publish.complete", body, t=t) >= 500
    assert not WebhookDelivery.objects.exists()
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=post.pk).status == "processing"

    # And when the database is well again and TikTok redelivers the same body, it is applied
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TRIGGER refuse_changes ON {}").format(table))
    assert deliver("post.publish.complete", body, t=t) == 200
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=post.pk).status == "published"
        assert PublishAttempt.objects.filter(post=post, kind=AttemptKind.WEBHOOK).count() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.processed_at is not None and delivery.agencies == 1
