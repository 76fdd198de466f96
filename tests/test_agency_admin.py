"""Each agency's own admin: every model, bulk cancel, lists that do not grow in queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostMedia, PostStatus
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import AccountSnapshotFactory, PostFactory, PostMediaFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

ADMIN_LISTS = [
    "/admin/users/user/",
    "/admin/accounts/tiktokaccount/",
    "/admin/posts/post/",
    "/admin/posts/postmedia/",
    "/admin/posts/publishattempt/",
    "/admin/analytics/accountsnapshot/",
    "/admin/audit/auditlog/",
    "/admin/team/invitation/",
]


@pytest.fixture
def owner_client(alpha: Agency):  # type: ignore[no-untyped-def]
    client = client_for(alpha)
    client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    return client


def test_bulk_cancel_cancels_what_it_may_and_says_why_not(alpha: Agency, owner_client) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        waiting = PostFactory.create_batch(2, account=account)
        claimed = PostFactory(account=account, status=PostStatus.PUBLISHING, caption="Already going out")

    response = owner_client.post(
        "/admin/posts/post/",
        {"action": "cancel_posts", "_selected_action": [str(p.pk) for p in [*waiting, claimed]]},
        follow=True,
    )

    assert b"Cancelled 2 post(s)." in response.content
    assert b"is publishing and can no longer be cancelled" in response.content
    with schema_context(alpha.schema_name):
        statuses = dict(Post.objects.values_list("pk", "status"))
        assert [statuses[p.pk] for p in waiting] == [PostStatus.CANCELLED] * 2
        assert statuses[claimed.pk] == PostStatus.PUBLISHING
        entries = AuditLog.objects.filter(action="post.cancelled")
        assert entries.count() == 2 and {e.actor_email for e in entries} == {"owner@shared.example"}


@pytest.mark.parametrize("url", ADMIN_LISTS)
def test_admin_lists_open_and_do_not_grow_in_queries(alpha: Agency, owner_client, url: str) -> None:  # type: ignore[no-untyped-def]
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(url).status_code == 200
        return len(captured)

    with schema_context(alpha.schema_name):
        PostFactory()
        AccountSnapshotFactory()
    few = queries()
    with schema_context(alpha.schema_name):
        PostFactory.create_batch(5)
        AccountSnapshotFactory.create_batch(5)
    assert queries() == few


def test_posts_and_their_videos_are_read_only_in_the_agency_admin(alpha: Agency, owner_client) -> None:  # type: ignore[no-untyped-def]
    # Given a scheduled post with its publish job
    with schema_context(alpha.schema_name):
        post = PostFactory(caption="Keep my time", status=PostStatus.SCHEDULED)
        media = PostMediaFactory(post=post)
    later = (post.scheduled_at + dt.timedelta(days=1)).strftime("%Y-%m-%d")

    # The admin shows it, offers no way to add or edit, and refuses a forged edit
    page = owner_client.get(f"/admin/posts/post/{post.pk}/change/").content.decode()
    assert "Keep my time" in page and 'name="_save"' not in page
    assert 'href="/admin/posts/post/add/"' not in owner_client.get("/admin/posts/post/").content.decode()
    forged = owner_client.post(
        f"/admin/posts/post/{post.pk}/change/",
        {"caption": "Changed behind the lifecycle", "scheduled_at_0": later, "scheduled_at_1": "09:00"},
    )
    assert forged.status_code == 403
    assert owner_client.post(f"/admin/posts/postmedia/{media.pk}/change/", {"post": ""}).status_code == 403
    assert owner_client.get("/admin/posts/post/add/").status_code == 403
    with schema_context(alpha.schema_name):
        kept = Post.objects.get(pk=post.pk)
        assert (kept.caption, kept.scheduled_at) == ("Keep my time", post.scheduled_at)
        assert PostMedia.objects.get(pk=media.pk).post_id == post.pk


def test_tiktok_accounts_come_from_tiktok_not_from_the_admin(alpha: Agency, owner_client) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(
            username="revoked.client", status="revoked", status_reason="Disconnected."
        )

    assert owner_client.get("/admin/accounts/tiktokaccount/add/").status_code == 403
    page = owner_client.get(f"/admin/accounts/tiktokaccount/{account.pk}/change/").content.decode()
    assert 'name="status"' not in page and "Revoked" in page  # shown, not editable
    owner_client.post(
        f"/admin/accounts/tiktokaccount/{account.pk}/change/",
        {"username": "revoked.client", "display_name": "", "client_label": "Bakery", "status": "active"},
    )
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
        assert account.status == "revoked"


def test_the_admin_offers_disconnect_not_delete_and_it_revokes_at_tiktok(
    alpha: Agency,
    owner_client,
    tiktok: FakeTikTok,  # type: ignore[no-untyped-def]
) -> None:
    # Given an account connected with live tokens
    tokens = tiktok.issue_tokens("fake-open-public-001")
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(
            open_id="fake-open-public-001",
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )
    changelist = "/admin/accounts/tiktokaccount/"

    # Then deleting it is not offered (a deleted row would leave the grant alive at TikTok)
    assert owner_client.get(f"{changelist}{account.pk}/delete/").status_code == 403
    page = owner_client.get(changelist).content.decode()
    assert "delete_selected" not in page and "Disconnect selected accounts (revoke at TikTok)" in page

    # When the admin disconnects it, they are asked first, and nothing happens yet
    selected = {"action": "disconnect_accounts", "_selected_action": [str(account.pk)]}
    asked = owner_client.post(changelist, selected).content.decode()
    assert "Disconnect these accounts?" in asked and str(account) in asked
    assert not [c for c in tiktok.calls if c["endpoint"] == "revoke"]

    # And once confirmed, the grant is revoked at TikTok and the tokens are gone
    done = owner_client.post(changelist, {**selected, "confirm": "yes"}, follow=True).content.decode()
    assert "their tokens were revoked at TikTok and wiped" in done
    assert [c["status"] for c in tiktok.calls if c["endpoint"] == "revoke"] == [200]
    refused = httpx.post(
        f"{tiktok.base_url}/v2/post/publish/creator_info/query/",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        json={},
        timeout=5,
    )
    assert refused.status_code == 401
    with schema_context(alpha.schema_name):
        gone = TikTokAccount.all_objects.get(pk=account.pk)
        assert gone.is_deleted and not gone.access_token and not gone.refresh_token
        assert AuditLog.objects.filter(action="account.disconnected", object_id=str(account.pk)).exists()


def test_tiktoks_upload_url_is_never_shown(alpha: Agency, owner_client) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema_name):
        post = PostFactory(
            status=PostStatus.PROCESSING,
            publish_id="v_pub_file~v2-1.789",
            upload_url="https://open-upload.tiktokapis.com/video/?upload_id=7000&upload_token=secret-upload-token",
        )
    for url in (f"/admin/posts/post/{post.pk}/change/", f"/posts/{post.pk}/", "/admin/posts/post/"):
        page = owner_client.get(url)
        assert page.status_code == 200
        assert (
            "secret-upload-token" not in page.content.decode() and "open-upload" not in page.content.decode()
        )


def test_the_view_on_site_shortcut_answers_nothing_for_public_models(
    alpha: Agency, beta: Agency, owner_client: Any, settings: Any
) -> None:
    # Given the content types of models that live only in the public schema
    settings.DEBUG = True  # the development error page tells the most
    with schema_context(alpha.schema_name):
        agency_type = ContentType.objects.get_for_model(Agency).pk
    existing, missing = f"/admin/r/{agency_type}/{beta.pk}/", f"/admin/r/{agency_type}/987654/"

    # When the agency's admin asks the shortcut about another agency's id and an unused one
    with CaptureQueriesContext(connection) as queries:
        answers = [owner_client.get(url) for url in (existing, missing)]

    # Then both answers are the same 404, and the public table was never read
    assert [a.status_code for a in answers] == [404, 404]
    for answer in answers:
        assert "No such object." in answer.content.decode()
        assert "associated URL" not in answer.content.decode() and "exist" not in answer.content.decode()
    looked_up = 'FROM "tenants_agency" WHERE "tenants_agency"."id"'
    assert not [q for q in queries.captured_queries if looked_up in q["sql"]]
