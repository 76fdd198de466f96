"""The public API: keys made on the API keys page, the same gates as the pages, one error shape,
safe retries and rate limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.api.keys import api_key_create, api_key_revoke
from apps.api.models import ApiKey
from apps.audit.models import AuditLog
from apps.posts.models import Post, PostStatus
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
KEY = re.compile(r'<code class="secret" id="new-key">(pl_[a-z0-9]{10}_[A-Za-z0-9_-]+)</code>')


def owner(agency: Agency) -> User:
    with schema_context(agency.schema_name):
        return User.objects.get(email=OWNER)


def make_key(
    agency: Agency, role: str = Role.EDITOR, accounts: list[TikTokAccount] = (), **extra: Any
) -> str:
    with schema_context(agency.schema_name):
        _key, raw = api_key_create(
            name=f"{role} tool", role=role, accounts=accounts, expires_at=None, by=owner(agency), **extra
        )
    return raw


def api(agency: Agency, raw: str | None) -> Client:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    return Client(HTTP_HOST=agency.primary_host, **headers)


def post_json(client: Client, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def two_accounts(alpha: Agency) -> tuple[TikTokAccount, TikTokAccount]:
    with schema_context(alpha.schema_name):
        return TikTokAccountFactory(username="granted"), TikTokAccountFactory(username="other")


def test_an_admin_makes_a_key_that_is_shown_once_and_stored_hashed(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    page = client_for(alpha)
    assert page.post("/login/", {"username": OWNER, "password": OWNER_PASSWORD}).status_code == 302

    made = page.post(
        "/settings/api-keys/", {"name": "Reporting tool", "role": "editor", "accounts": [granted.pk]}
    )

    assert made.status_code == 200
    html = made.content.decode()
    assert "shown only this once" in html
    raw = KEY.search(html).group(1)  # type: ignore[union-attr]
    assert raw not in page.get("/settings/api-keys/").content.decode()
    with schema_context(alpha.schema_name):
        key = ApiKey.objects.get()
        assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
        assert raw not in json.dumps(list(ApiKey.objects.values()), default=str)
        assert raw[3:13] == key.prefix
        assert AuditLog.objects.filter(action="api_key.created", object_id=str(key.pk)).exists()
    # and the key works, as the member it is, on the account it was given
    listed = api(alpha, raw).get("/api/v1/accounts")
    assert listed.status_code == 200, listed.content
    assert [a["username"] for a in listed.json()] == ["granted"]
    with schema_context(alpha.schema_name):
        assert ApiKey.objects.get().last_used_at is not None


def test_people_who_are_not_admins_get_no_keys_page(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("ed@example.com", OWNER_PASSWORD, role=Role.MANAGER)
    page = client_for(alpha)
    page.post("/login/", {"username": "ed@example.com", "password": OWNER_PASSWORD})
    assert page.get("/settings/api-keys/").status_code == 404
    assert page.post("/settings/api-keys/", {"name": "x", "role": "admin"}).status_code == 404


def test_a_key_sees_nothing_of_another_agency_nor_of_accounts_it_was_not_given(
    alpha: Agency, beta: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, other = two_accounts
    with schema_context(alpha.schema_name):
        hidden = PostFactory(account=other)
        mine = PostFactory(account=granted)
    with schema_context(beta.schema_name):
        theirs_account = TikTokAccountFactory()
        theirs = PostFactory(account=theirs_account)
    raw = make_key(alpha, accounts=[granted])
    key = api(alpha, raw)

    assert [p["id"] for p in key.get("/api/v1/posts").json()["items"]] == [str(mine.pk)]
    for path in (
        f"/api/v1/posts/{hidden.pk}",
        f"/api/v1/accounts/{other.pk}",
        f"/api/v1/accounts/{other.pk}/snapshots",
        f"/api/v1/posts/{theirs.pk}",
        f"/api/v1/accounts/{theirs_account.pk}",
    ):
        response = key.get(path)
        assert response.status_code == 404, path
        assert error_code(response) == "not_found"
    assert post_json(key, f"/api/v1/posts/{hidden.pk}/cancel", {}).status_code == 404
    draft = post_json(key, "/api/v1/posts", {"account_id": str(other.pk), "caption": "nope"})
    assert draft.status_code == 404
    # the key is unknown on another agency's host: not even who it is
    assert api(beta, raw).get("/api/v1/posts").status_code == 401
    # an editor's key reads no audit log
    assert key.get("/api/v1/audit").status_code == 404


def test_no_key_a_wrong_one_a_revoked_one_or_a_session_is_refused(alpha: Agency) -> None:
    raw = make_key(alpha, role=Role.ADMIN)
    assert api(alpha, raw).get("/api/v1/accounts").status_code == 200
    for client in (api(alpha, None), api(alpha, raw[:-2] + "xx"), api(alpha, "pl_short_x")):
        refused = client.get("/api/v1/accounts")
        assert refused.status_code == 401
        assert error_code(refused) == "unauthenticated"
        assert refused["WWW-Authenticate"].startswith("Bearer")
    # A signed-in browser is not a key: its cookie alone must not act (no CSRF token guards the API)
    browser = client_for(alpha)
    browser.post("/login/", {"username": OWNER, "password": OWNER_PASSWORD})
    assert browser.get("/api/v1/accounts").status_code == 401
    with schema_context(alpha.schema_name):
        key = ApiKey.objects.get()
        assert api_key_revoke(key=key, by=owner(alpha))
        assert not User.objects.filter(pk=key.member_id, is_active=True).exists()
    assert api(alpha, raw).get("/api/v1/accounts").status_code == 401


def test_an_expired_key_is_refused(alpha: Agency) -> None:
    raw = make_key(alpha)
    with schema_context(alpha.schema_name):
        ApiKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api(alpha, raw).get("/api/v1/posts").status_code == 401


def test_drafts_are_made_scheduled_and_cancelled_through_the_posts_services(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    raw = make_key(alpha, role=Role.MANAGER, accounts=[granted])
    key = api(alpha, raw)

    made = post_json(
        key,
        "/api/v1/posts",
        {"account_id": str(granted.pk), "caption": "Launch day", "privacy_level": "SELF_ONLY"},
    )
    assert made.status_code == 201, made.content
    post = made.json()
    assert post["status"] == "draft" and post["caption"] == "Launch day"
    when = (timezone.now() + dt.timedelta(days=2)).replace(microsecond=0)
    scheduled = post_json(
        key,
        f"/api/v1/posts/{post['id']}/schedule",
        {"scheduled_at": when.isoformat(), "time_zone": "Europe/Paris"},
    )
    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["status"] == "scheduled"
    assert dt.datetime.fromisoformat(scheduled.json()["scheduled_at"]) == when
    edited = key.patch(
        f"/api/v1/posts/{post['id']}", json.dumps({"caption": "Launch day!"}), "application/json"
    )
    assert edited.status_code == 200 and edited.json()["caption"] == "Launch day!"
    cancelled = post_json(key, f"/api/v1/posts/{post['id']}/cancel", {})
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    # what the key did is in the audit log, as the key's member
    with schema_context(alpha.schema_name):
        member = ApiKey.objects.get().member
        actions = set(AuditLog.objects.filter(actor=member).values_list("action", flat=True))
    assert {"post.created", "post.scheduled", "post.cancelled"} <= actions, actions


def test_errors_have_one_shape_and_name_the_field(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    key = api(alpha, make_key(alpha, role=Role.MANAGER, accounts=[granted]))

    wrong = post_json(key, "/api/v1/posts", {"account_id": str(granted.pk), "privacy_level": "EVERYBODY"})
    assert wrong.status_code == 422
    assert error_code(wrong) == "invalid_request"
    assert "privacy_level" in wrong.json()["error"]["fields"]
    garbage = key.post("/api/v1/posts", b"{not json", content_type="application/json")
    assert garbage.status_code in (400, 422) and "error" in garbage.json()
    draft = post_json(
        key, "/api/v1/posts", {"account_id": str(granted.pk), "privacy_level": "SELF_ONLY"}
    ).json()
    late = post_json(
        key, f"/api/v1/posts/{draft['id']}/schedule", {"scheduled_at": "2020-01-01T00:00:00+00:00"}
    )
    assert late.status_code == 409
    assert error_code(late) == "post_state" and "already passed" in late.json()["error"]["message"]
    assert key.get("/api/v1/posts?cursor=not-a-cursor").status_code == 400


def test_a_retried_post_is_made_once_and_a_reused_key_with_another_body_is_refused(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    key = api(alpha, make_key(alpha, accounts=[granted]))
    body = {"account_id": str(granted.pk), "caption": "Once"}

    first = post_json(key, "/api/v1/posts", body, HTTP_IDEMPOTENCY_KEY="plan-42")
    again = post_json(key, "/api/v1/posts", body, HTTP_IDEMPOTENCY_KEY="plan-42")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    with schema_context(alpha.schema_name):
        assert Post.objects.filter(caption="Once").count() == 1
    other = post_json(key, "/api/v1/posts", {**body, "caption": "Twice"}, HTTP_IDEMPOTENCY_KEY="plan-42")
    assert other.status_code == 422 and error_code(other) == "idempotency_key_reused"
    with schema_context(alpha.schema_name):
        assert not Post.objects.filter(caption="Twice").exists()
    # another key's Idempotency-Key is its own
    second_key = api(alpha, make_key(alpha, accounts=[granted]))
    assert post_json(second_key, "/api/v1/posts", body, HTTP_IDEMPOTENCY_KEY="plan-42").status_code == 201


def test_a_key_over_its_rate_limit_is_told_when_to_come_back(alpha: Agency, settings: Any) -> None:
    settings.API_RATE_LIMIT = (3, 60)
    key = api(alpha, make_key(alpha))
    assert [key.get("/api/v1/posts").status_code for _ in range(3)] == [200, 200, 200]
    over = key.get("/api/v1/posts")
    assert over.status_code == 429
    assert error_code(over) == "rate_limited"
    assert 1 <= int(over["Retry-After"]) <= 61
    # another key is counted on its own
    assert api(alpha, make_key(alpha)).get("/api/v1/posts").status_code == 200


def test_pages_of_posts_lose_nothing_when_posts_are_added_meanwhile(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    start = timezone.now()
    with schema_context(alpha.schema_name):
        ids = {
            str(PostFactory(account=granted, created_at=start - dt.timedelta(seconds=n)).pk) for n in range(7)
        }
    key = api(alpha, make_key(alpha, accounts=[granted]))
    seen: list[str] = []
    page = key.get("/api/v1/posts?limit=3").json()
    seen += [p["id"] for p in page["items"]]
    with schema_context(alpha.schema_name):
        PostFactory(account=granted, caption="newer")  # lands on a page already read
    while page["next_cursor"]:
        page = key.get(f"/api/v1/posts?limit=3&cursor={page['next_cursor']}").json()
        seen += [p["id"] for p in page["items"]]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == ids


def test_approvals_name_the_version_they_saw(
    alpha: Agency, two_accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = two_accounts
    with schema_context(alpha.schema_name):
        granted.requires_approval = True
        granted.save()
        writer = User.objects.create_user("writer@example.com", OWNER_PASSWORD, role=Role.EDITOR)
        access_set(user=writer, account=granted, perms={Perm.DRAFT}, by=owner(alpha))
        waiting = PostFactory(
            account=granted,
            status=PostStatus.PENDING_APPROVAL,
            created_by=writer,
            scheduled_at=timezone.now() + dt.timedelta(days=1),
        )
    key = api(alpha, make_key(alpha, role=Role.MANAGER, accounts=[granted]))

    listed = key.get("/api/v1/approvals").json()
    assert [p["id"] for p in listed] == [str(waiting.pk)]
    stale = post_json(
        key, f"/api/v1/approvals/{waiting.pk}/approve", {"version": "2020-01-01T00:00:00+00:00"}
    )
    assert stale.status_code == 409, stale.content
    approved = post_json(key, f"/api/v1/approvals/{waiting.pk}/approve", {"version": listed[0]["version"]})
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "scheduled"


def test_the_schema_and_docs_page_need_no_key(alpha: Agency) -> None:
    schema = api(alpha, None).get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/posts" in paths and "/api/v1/posts/{post_id}/schedule" in paths
    assert api(alpha, None).get("/api/v1/docs").status_code == 200
