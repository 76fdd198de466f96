"""Client reviews: a link (its token kept only as a hash) shows a client exactly the posts it
covers, of its own accounts; the client approves, rejects or asks for changes without an
account; every decision goes to an append-only consent record, exported as CSV by owners and
admins; the worker refuses to publish a post that changed after it was approved; a shared
calendar shows a client's posts read-only. Real schema, the fake TikTok over a real socket."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.audit.models import AuditLog
from apps.common.log_redaction import redact
from apps.fake_tiktok.server import FakeTikTok
from apps.notifications.models import Notification
from apps.posts.models import Post, PostStatus, ReviewOutcome
from apps.posts.selectors import post_content_hash
from apps.posts.services import PostContent, post_approve, post_save, post_schedule
from apps.publishing.checks import APPROVAL_CHANGED
from apps.publishing.models import DueJob
from apps.publishing.services import post_publish
from apps.reviews.models import ClientLink, ConsentRecord, Decision, LinkKind
from apps.reviews.services import client_link_create, client_link_revoke, review_decide
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory, ready_post
from tests.test_publishing import claim

pytestmark = pytest.mark.django_db

ACME, BOLT = "Acme Drinks", "Bolt Bikes"
ACME_CAPTION, BOLT_CAPTION = "Acme summer launch 4K7", "Bolt secret prototype 9QX"


def signed_in(agency: Agency, email: str = "owner@shared.example") -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, f"{email} could not sign in"
    return client


def owner() -> User:
    return User.objects.get(email="owner@shared.example")


def author() -> User:
    return User.objects.filter(email="author@alpha.example").first() or User.objects.create_user(
        "author@alpha.example", OWNER_PASSWORD, role=Role.EDITOR, name="Ada Author"
    )


def waiting(account: TikTokAccount, caption: str, **values: object) -> Post:
    post = PostFactory(
        account=account,
        caption=caption,
        status=PostStatus.PENDING_APPROVAL,
        scheduled_at=timezone.now() + dt.timedelta(hours=5),
        created_by=author(),
        **values,
    )
    PostMediaFactory(post=post, original_name="clip.mp4")
    return post


def two_clients() -> tuple[Post, Post]:
    acme = TikTokAccountFactory(username="acmedrinks", client_label=ACME)
    bolt = TikTokAccountFactory(username="boltbikes", client_label=BOLT)
    return waiting(acme, ACME_CAPTION), waiting(bolt, BOLT_CAPTION)


def review_link(*posts: Post, days: int = 7) -> tuple[ClientLink, str]:
    return client_link_create(
        kind=LinkKind.REVIEW,
        client_label=posts[0].account.client_label,
        days=days,
        posts=posts,
        recipient="Carla Client",
        by=owner(),
    )


def decide(client: Client, token: str, post: Post, decision: str, **fields: str) -> Any:
    """Post a decision from the review page, as the client's browser would (having seen the post
    as it is now)."""
    with schema_context(Agency.objects.get(slug="alpha").schema_name):
        seen = post_content_hash(Post.objects.get(pk=post.pk))
    data = {"decision": decision, "seen": seen, "reviewer_name": "Carla Client", **fields}
    return client.post(f"/client/review/{token}/posts/{post.pk}/", data, REMOTE_ADDR="203.0.113.9")


def test_a_link_made_on_the_agency_page_shows_its_client_exactly_and_no_other_client(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, bolt_post = two_clients()
    owner_client = signed_in(alpha)

    # Given the owner makes a review link for Acme's post on the links page
    page = owner_client.get("/reviews/", {"client": ACME}).content.decode()
    assert ACME_CAPTION in page and BOLT_CAPTION not in page  # only Acme's posts to choose from
    made = owner_client.post(
        f"/reviews/?client={quote(ACME)}",
        {
            "kind": "review",
            "review-posts": [str(acme_post.pk)],
            "review-days": "7",
            "review-recipient": "Carla",
        },
    ).content.decode()
    url = re.search(r'id="new-link" value="(http://[^"]+)"', made)
    assert url is not None, "the new link is shown once"
    token = url.group(1).rstrip("/").rsplit("/", 1)[1]
    # Shown once: neither the list page nor the database holds it
    assert token not in owner_client.get("/reviews/", {"client": ACME}).content.decode()
    with schema_context(alpha.schema_name):
        link = ClientLink.objects.get()
        assert token not in str(list(ClientLink.objects.values_list()))
        assert AuditLog.objects.filter(action="client_link.created", object_id=str(link.pk)).exists()
        assert token not in str(list(AuditLog.objects.values_list("changes", flat=True)))
    assert redact(f"GET /client/review/{token}/ 200") == "GET /client/review/[redacted]/ 200"

    # When the client opens it, without an account
    client = client_for(alpha)
    page = client.get(f"/client/review/{token}/").content.decode()

    # Then they see the agency's name, Acme's post as it goes to TikTok, and nothing of Bolt's
    assert '<span class="client-brand-name">Alpha Agency</span>' in page
    assert ACME_CAPTION in page and "@acmedrinks" in page and "Everyone" in page
    assert BOLT_CAPTION not in page and "boltbikes" not in page
    with schema_context(alpha.schema_name):
        bolt_media = bolt_post.media.get()
    assert decide(client, token, bolt_post, Decision.APPROVED).status_code == 404
    assert client.get(f"/client/review/{token}/media/{bolt_media.pk}/").status_code == 404
    # Nor may a Bolt post be slipped into an Acme link
    refused = owner_client.post(
        f"/reviews/?client={quote(ACME)}",
        {"kind": "review", "review-posts": [str(bolt_post.pk)], "review-days": "7"},
    ).content.decode()
    assert "Select a valid choice" in refused
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=bolt_post.pk).status == PostStatus.PENDING_APPROVAL
        assert ClientLink.objects.count() == 1


def test_expired_revoked_reused_after_revoke_or_tampered_links_open_nothing(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, _ = two_clients()
        link, token = review_link(acme_post)
        expired, expired_token = review_link(acme_post)
        ClientLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        _, calendar_token = client_link_create(kind=LinkKind.CALENDAR, client_label=ACME, days=3, by=owner())
    client = client_for(alpha)
    assert client.get(f"/client/review/{token}/").status_code == 200

    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, token[:10] + "x" * 33, expired_token, calendar_token, "short"):
        assert client.get(f"/client/review/{bad}/").status_code == 404, bad
    assert client.get(f"/client/calendar/{token}/").status_code == 404  # a review link is not a calendar

    # Revoked: the page and a decision posted from a page opened before both answer 404
    with schema_context(alpha.schema_name):
        assert client_link_revoke(link=link, by=owner()) is True
        assert client_link_revoke(link=link, by=owner()) is False
        assert AuditLog.objects.filter(action="client_link.revoked", object_id=str(link.pk)).count() == 1
    assert client.get(f"/client/review/{token}/").status_code == 404
    assert decide(client, token, acme_post, Decision.APPROVED).status_code == 404
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=acme_post.pk).status == PostStatus.PENDING_APPROVAL
        assert not ConsentRecord.objects.exists()
        # A new link for the same post does not bring the old one back
        review_link(acme_post)
    assert client.get(f"/client/review/{token}/").status_code == 404


def test_the_client_approves_and_the_post_is_scheduled_with_its_consent_recorded(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, _ = two_clients()
        access_set(user=author(), account=acme_post.account, perms=ROLE_DEFAULTS[Role.EDITOR], by=None)
        link, token = review_link(acme_post)
        shown_hash = post_content_hash(acme_post)
    client = client_for(alpha)

    response = decide(client, token, acme_post, Decision.APPROVED, HTTP_USER_AGENT="Phone")
    page = client.get(response["Location"]).content.decode()

    assert "Approved: it will go out as shown" in page
    with schema_context(alpha.schema_name):
        post = Post.objects.get(pk=acme_post.pk)
        assert post.status == PostStatus.SCHEDULED and post.review_outcome == ReviewOutcome.APPROVED
        assert post.approved_content_hash == shown_hash
        assert DueJob.objects.filter(post_id=post.pk, due_at=post.scheduled_at).exists()
        record = ConsentRecord.objects.get()
        assert (record.client_label, record.reviewer_name, record.decision) == (
            ACME,
            "Carla Client",
            "approved",
        )
        assert (record.link_id, record.ip, record.content_hash) == (link.pk, "203.0.113.9", shown_hash)
        assert record.content["caption"] == ACME_CAPTION and record.content["files"][0]["sha256"]
        entry = AuditLog.objects.get(action="review.approved")
        assert entry.ip == "203.0.113.9" and entry.changes["reviewer"] == "Carla Client"
        # The author hears of it
        note = Notification.objects.get(recipient=author(), event__kind="post_approved", channel="in_app")
        assert "Carla Client (Acme Drinks)" in note.event.body


def test_rejecting_or_asking_for_changes_takes_a_comment_and_sends_the_post_back(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, _ = two_clients()
        second = waiting(acme_post.account, "Acme second post")
        _, token = review_link(acme_post, second)
    client = client_for(alpha)

    # Without a comment: refused, and what was typed is kept
    page = decide(client, token, acme_post, Decision.REJECTED, reviewer_name="Rita Reviewer")
    text = page.content.decode()
    assert page.status_code == 200 and "Say what should change" in text
    assert 'value="Rita Reviewer"' in text

    decide(client, token, acme_post, Decision.REJECTED, comment="Wrong bottle colour")
    decide(client, token, second, Decision.CHANGES_REQUESTED, comment="Shorter caption please")

    with schema_context(alpha.schema_name):
        rejected, changes = Post.objects.get(pk=acme_post.pk), Post.objects.get(pk=second.pk)
        assert (rejected.status, rejected.review_outcome) == (PostStatus.DRAFT, ReviewOutcome.REJECTED)
        assert rejected.review_comment == "Wrong bottle colour"
        assert changes.status == PostStatus.DRAFT
        assert changes.review_comment == "Changes requested: Shorter caption please"
        assert list(ConsentRecord.objects.values_list("decision", flat=True)) == [
            "rejected",
            "changes_requested",
        ]
        assert not DueJob.objects.filter(post_id__in=[acme_post.pk, second.pk]).exists()
    # A post sent back shows what was said and can no longer be decided on from the link
    page = client.get(f"/client/review/{token}/").content.decode()
    assert "Sent back to the agency: “Wrong bottle colour”" in page
    page = decide(client, token, acme_post, Decision.APPROVED).content.decode()
    assert "can no longer be reviewed" in page


def test_a_post_changed_after_the_page_was_opened_is_not_approved(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, _ = two_clients()
        _, token = review_link(acme_post)
        seen = post_content_hash(acme_post)
        Post.objects.filter(pk=acme_post.pk).update(caption="Edited behind the client's back")
    response = client_for(alpha).post(
        f"/client/review/{token}/posts/{acme_post.pk}/",
        {"decision": "approved", "seen": seen, "reviewer_name": "Carla"},
    )
    assert "It changed after you opened this page" in response.content.decode()
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=acme_post.pk).status == PostStatus.PENDING_APPROVAL
        assert not ConsentRecord.objects.exists()


def test_a_caption_edited_after_the_clients_approval_is_refused_at_publish_time(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a client approved a post through a link
    post = ready_post(
        tiktok, status=PostStatus.PENDING_APPROVAL, created_by=author(), caption="Approved words"
    )
    TikTokAccount.objects.filter(pk=post.account_id).update(client_label=ACME)
    post = Post.objects.select_related("account").get(pk=post.pk)
    post.scheduled_at = timezone.now() + dt.timedelta(minutes=10)
    post.save()
    link, _ = review_link(post)
    review_decide(
        post=post, decision="approved", seen_hash=post_content_hash(post), reviewer_name="Carla", link=link
    )

    # When the agency edits the caption and schedules it again itself (the owner needs no approval)
    post = Post.objects.get(pk=post.pk)
    edited = post_save(
        post=post,
        content=PostContent(
            account=post.account, caption="Words the client never saw", privacy_level=post.privacy_level
        ),
        media=None,
        by=owner(),
    )
    post_schedule(post=edited, scheduled_at=timezone.now(), time_zone="UTC", by=owner())

    # Then the worker refuses it before init, saying why, and nothing reaches TikTok
    post_publish(post_id=str(claim(edited).pk))
    post = Post.objects.get(pk=post.pk)
    assert post.status == PostStatus.FAILED and post.last_error_code == "approval_changed"
    assert "changed after Carla (Acme Drinks) approved it" in post.last_error_message
    assert tiktok.create_post_calls() == []
    assert Notification.objects.filter(
        event__kind="post_failed", event__body=post.last_error_message, recipient=owner()
    ).exists()


def test_an_approved_post_changed_outside_the_composer_is_refused_before_init(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    post = ready_post(tiktok, status=PostStatus.PENDING_APPROVAL, created_by=author())
    post.scheduled_at = timezone.now() + dt.timedelta(minutes=10)
    post.save()
    post = post_approve(post=post, by=owner(), seen=post.updated_at)
    # (an edit that bypassed the composer: the admin, a script)
    Post.objects.filter(pk=post.pk).update(caption="Not what was approved", scheduled_at=timezone.now())
    DueJob.objects.filter(post_id=post.pk).update(due_at=timezone.now())

    post_publish(post_id=str(claim(post).pk))

    post = Post.objects.get(pk=post.pk)
    assert (post.status, post.last_error_message) == (PostStatus.FAILED, APPROVAL_CHANGED)
    assert tiktok.create_post_calls() == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE reviews_consentrecord SET decision = 'approved', comment = ''",
        "DELETE FROM reviews_consentrecord",
        "TRUNCATE reviews_consentrecord",
    ],
    ids=["update", "delete", "truncate"],
)
def test_the_database_refuses_to_change_or_remove_consent(in_alpha: Agency, statement: str) -> None:
    acme_post, _ = two_clients()
    link, _ = review_link(acme_post)
    record = review_decide(
        post=acme_post,
        decision="rejected",
        comment="No",
        seen_hash=post_content_hash(acme_post),
        reviewer_name="Carla",
        link=link,
    )
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # so TRUNCATE meets the trigger, not FK checks
    with (
        pytest.raises(DatabaseError, match="consent records cannot be changed or removed"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecord.objects.filter(pk=record.pk).delete()
    assert ConsentRecord.objects.get(pk=record.pk).decision == "rejected"


def test_owners_export_a_clients_consent_record_and_others_may_not(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, bolt_post = two_clients()
        for post, comment in ((acme_post, '=HYPERLINK("http://evil.example")'), (bolt_post, "Brighter")):
            link, _ = review_link(post)
            review_decide(
                post=post,
                decision="changes_requested",
                comment=comment,
                seen_hash=post_content_hash(post),
                reviewer_name="Carla",
                link=link,
            )
        manager = User.objects.create_user("manager@alpha.example", OWNER_PASSWORD, role=Role.MANAGER)
        access_set(user=manager, account=acme_post.account, perms=ROLE_DEFAULTS[Role.MANAGER], by=None)

    response = signed_in(alpha).get("/reviews/consent.csv", {"client": ACME})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["client"], r["decision"], r["reviewer"], r["comment"]) for r in rows] == [
        # (a spreadsheet would run the comment as a formula: it is exported quoted)
        (ACME, "changes_requested", "Carla", '\'=HYPERLINK("http://evil.example")')
    ]
    assert ACME_CAPTION in rows[0]["content"] and BOLT_CAPTION not in body
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.filter(action="consent.exported", changes__client=ACME).exists()
    # A manager may send links for Acme but not export its evidence; nobody exports an unknown client
    manager_client = signed_in(alpha, "manager@alpha.example")
    assert manager_client.get("/reviews/", {"client": ACME}).status_code == 200
    assert manager_client.get("/reviews/consent.csv", {"client": ACME}).status_code == 404
    # nor decide on the client reviewers' page: their approvals are not the client's consent
    assert manager_client.get("/reviews/mine/").status_code == 404
    assert signed_in(alpha).get("/reviews/consent.csv", {"client": "Nobody"}).status_code == 404


def test_a_client_reviewer_with_an_account_decides_on_the_same_page(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, bolt_post = two_clients()
        reviewer = User.objects.create_user(
            "carla@acme.example", OWNER_PASSWORD, role=Role.CLIENT, name="Carla"
        )
        access_set(user=reviewer, account=acme_post.account, perms=ROLE_DEFAULTS[Role.CLIENT], by=None)
    client = signed_in(alpha, "carla@acme.example")

    page = client.get("/reviews/mine/").content.decode()
    assert '<span class="client-brand-name">Alpha Agency</span>' in page
    assert ACME_CAPTION in page and BOLT_CAPTION not in page
    assert 'name="reviewer_name"' not in page  # they decide as themselves
    # Client reviewers send no links
    assert client.get("/reviews/", {"client": ACME}).status_code == 404

    with schema_context(alpha.schema_name):
        seen = post_content_hash(acme_post)
    client.post(f"/reviews/mine/{acme_post.pk}/decide/", {"decision": "approved", "seen": seen})
    assert (
        client.post(
            f"/reviews/mine/{bolt_post.pk}/decide/", {"decision": "approved", "seen": seen}
        ).status_code
        == 404
    )
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=acme_post.pk).status == PostStatus.SCHEDULED
        record = ConsentRecord.objects.get()
        assert (record.user_id, record.reviewer_name, record.link_id) == (reviewer.pk, "Carla", None)


def test_a_shared_calendar_shows_the_clients_upcoming_and_recent_posts_only(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        acme_post, _ = two_clients()
        now = timezone.now()
        PostFactory(
            account=acme_post.account,
            caption="Acme went out last week",
            status=PostStatus.PUBLISHED,
            scheduled_at=now - dt.timedelta(days=7),
            published_at=now - dt.timedelta(days=7),
            publish_id="p-1",
        )
        PostFactory(account=acme_post.account, caption="Acme private draft", status=PostStatus.DRAFT)
        PostFactory(
            account=acme_post.account,
            caption="Acme long ago",
            scheduled_at=now - dt.timedelta(days=90),
            status=PostStatus.PUBLISHED,
            published_at=now - dt.timedelta(days=90),
            publish_id="p-2",
        )
        link, token = client_link_create(kind=LinkKind.CALENDAR, client_label=ACME, days=30, by=owner())
    client = client_for(alpha)

    page = client.get(f"/client/calendar/{token}/").content.decode()

    assert '<span class="client-brand-name">Alpha Agency</span>' in page
    coming, recently = page.split("<h2>Recently</h2>")
    assert ACME_CAPTION in coming and "Acme went out last week" in recently
    assert BOLT_CAPTION not in page and "Acme private draft" not in page and "Acme long ago" not in page
    assert "<form" not in page  # read-only
    with schema_context(alpha.schema_name):
        ClientLink.objects.filter(pk=link.pk).update(expires_at=now - dt.timedelta(minutes=1))
    assert client.get(f"/client/calendar/{token}/").status_code == 404
