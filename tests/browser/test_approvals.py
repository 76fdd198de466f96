"""A client reviewer in a real browser under the strict CSP: they see only their account's posts,
watch the video, are told to explain a rejection, and approve; at desktop and phone width."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.posts.models import Post, PostStatus, ReviewOutcome
from apps.users.models import Role, User
from tests.browser.conftest import DESKTOP, PHONE, Stack, sign_in, snap
from tests.conftest import OWNER_PASSWORD
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory
from tests.mp4 import mp4_bytes


def test_a_client_reviewer_reviews_their_accounts_posts(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    suffix = uuid.uuid4().hex[:8]
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        theirs = TikTokAccountFactory(username="luna.bakes", open_id=f"luna-{suffix}", requires_approval=True)
        other = TikTokAccountFactory(
            username="theo.workshop", open_id=f"theo-{suffix}", requires_approval=True
        )
        author = User.objects.create_user(
            "editor@committed.example", OWNER_PASSWORD, role=Role.EDITOR, name="Eda"
        )
        reviewer = User.objects.create_user(
            "client@committed.example",
            OWNER_PASSWORD,
            role=Role.CLIENT,
            name="Clara",
            time_zone="Europe/Paris",
        )
        access_set(user=reviewer, account=theirs, perms=ROLE_DEFAULTS[Role.CLIENT], by=None)
        when = timezone.now() + dt.timedelta(days=1)
        post = PostFactory(
            account=theirs,
            caption="Sourdough launch day",
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=when,
            created_by=author,
        )
        PostMediaFactory(
            post=post, original_name="launch.mp4", file=ContentFile(mp4_bytes(), name="launch.mp4")
        )
        PostFactory(
            account=other,
            caption="Walnut stool reveal",
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=when,
        )
    connection.set_schema_to_public()

    sign_in(page, stack, agency, email="client@committed.example")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Approvals").is_visible()
    assert nav.get_by_role("link", name="New post").count() == 0  # a reviewer does not compose
    assert page.get_by_text("Review 1 post").is_visible()

    nav.get_by_role("link", name="Approvals").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Waiting for your approval").is_visible()
    assert page.get_by_text("Sourdough launch day").is_visible()
    assert page.get_by_text("Walnut stool reveal").count() == 0  # another client's account
    assert page.get_by_label("The post's video").is_visible()
    assert page.get_by_text("By Eda").is_visible()

    # Rejecting without a word is refused, next to the field.
    page.get_by_role("button", name="Reject with this comment").click()
    page.wait_for_load_state()
    error = page.get_by_text("Say what should change, so the author can fix it.", exact=True)
    assert error.is_visible()
    assert page.get_by_label("What should change?").get_attribute("aria-invalid") == "true"
    expect(page.get_by_role("alert")).to_have_text(
        "“Sourdough launch day” was not rejected: say what should change, so the author can fix it."
    )
    expect(page.get_by_label("What should change?")).to_be_focused()
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 860})
    snap(page, "approvals-queue")

    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert page.get_by_text("Approved “Sourdough launch day”.").is_visible()
    assert page.get_by_text("Nothing is waiting for your approval.").is_visible()
    assert page.console_errors == []
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        approved = Post.objects.get(pk=post.pk)
        assert (approved.status, approved.review_outcome) == (PostStatus.SCHEDULED, ReviewOutcome.APPROVED)
    connection.set_schema_to_public()


def test_publish_now_follows_the_chosen_account_in_the_composer(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    # Given an editor of two accounts, one of which has its posts approved first
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        accounts = {}
        for open_id, username, approval in (
            ("fake-open-public-001", "luna.bakes", True),
            ("fake-open-private-002", "theo.workshop", False),
        ):
            tokens = stack.fake.issue_tokens(open_id)
            accounts[username] = TikTokAccountFactory(
                username=username,
                open_id=open_id,
                access_token=tokens["access_token"],
                refresh_token=tokens["refresh_token"],
                requires_approval=approval,
            )
        editor = User.objects.create_user("editor@committed.example", OWNER_PASSWORD, role=Role.EDITOR)
        for account in accounts.values():
            access_set(user=editor, account=account, perms=ROLE_DEFAULTS[Role.EDITOR], by=None)
    connection.set_schema_to_public()
    sign_in(page, stack, agency, email="editor@committed.example")
    page.goto(stack.url(agency, "/posts/new/"))
    publish_now = page.get_by_role("button", name="Publish now")
    reason = page.locator("#now-unavailable")

    choose = page.get_by_label("TikTok account").select_option

    # On the account that goes out without approval, Publish now is on
    choose(str(accounts["theo.workshop"].pk))
    expect(page.locator("#creator-nickname")).to_have_text("Theo's Workshop")
    expect(publish_now).to_be_enabled()
    expect(reason).to_be_hidden()

    # When they choose the account that needs approval, Publish now turns off and says why
    choose(str(accounts["luna.bakes"].pk))
    expect(page.locator("#approval-note")).to_be_visible()
    expect(reason).to_have_text(
        "Publish now is not available for @luna.bakes: its posts are approved before they go out. "
        "Choose a time at least 5 minutes from now and press Schedule to send it for approval."
    )
    expect(publish_now).to_be_disabled()
    expect(page.get_by_role("button", name="Schedule")).to_be_enabled()
    page.set_viewport_size(PHONE)
    expect(reason).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)

    # and back on the other account it is on again, with no reason shown
    choose(str(accounts["theo.workshop"].pk))
    expect(page.locator("#approval-note")).to_have_count(0)
    expect(publish_now).to_be_enabled()
    expect(reason).to_be_hidden()
    assert page.console_errors == []
