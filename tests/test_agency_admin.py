"""Each agency's own admin: every model, bulk cancel, lists that do not grow in queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
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
