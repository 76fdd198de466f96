"""The owner makes a review link for a client's posts on the links page; the client opens it in
a real browser, without an account: the agency's name on top, their own posts only, each with its
video and what goes to TikTok; a rejection without a comment is refused with what they typed kept;
they reject one post and approve another, at desktop and phone width (screenshots in
artifacts/screenshots/)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.posts.models import Post, PostStatus, ReviewOutcome
from apps.reviews.models import ConsentRecord
from tests.browser.conftest import DESKTOP, PHONE, Stack, sign_in, snap
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory
from tests.mp4 import mp4_bytes


def test_a_client_approves_and_rejects_through_a_review_link(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    suffix = uuid.uuid4().hex[:8]
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        theirs = TikTokAccountFactory(
            username="luna.bakes", open_id=f"luna-{suffix}", client_label="Luna Bakery"
        )
        other = TikTokAccountFactory(username="theo.workshop", open_id=f"theo-{suffix}", client_label="Theo")
        when = timezone.now() + dt.timedelta(days=1)
        to_reject, to_approve = (
            PostFactory(
                account=theirs, caption=caption, status=PostStatus.PENDING_APPROVAL, scheduled_at=when
            )
            for caption in ("Sourdough launch day", "Croissant masterclass")
        )
        for post in (to_reject, to_approve):
            PostMediaFactory(
                post=post, original_name="clip.mp4", file=ContentFile(mp4_bytes(), name="clip.mp4")
            )
        PostFactory(
            account=other,
            caption="Walnut stool reveal",
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=when,
        )
    connection.set_schema_to_public()

    # The owner sends both of Luna Bakery's posts for review from the links page
    sign_in(page, stack, agency)
    page.goto(stack.url(agency, "/reviews/"))
    page.get_by_role("link", name="Luna Bakery").click()
    page.wait_for_load_state()
    assert page.get_by_text("Walnut stool reveal").count() == 0  # another client's post
    page.get_by_label("Sourdough launch day", exact=False).check()
    page.get_by_label("Croissant masterclass", exact=False).check()
    page.locator("#id_review-recipient").fill("Luna Baker")
    page.get_by_role("button", name="Make review link").click()
    page.wait_for_load_state()
    link = page.get_by_label("The link").input_value()
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    page.set_viewport_size(DESKTOP)
    snap(page, "client-links")
    page.context.clear_cookies()  # the client has no account

    page.goto(link)
    expect(page.locator(".client-brand")).to_have_text("Committed Agency")
    assert page.get_by_role("heading", name="Posts for your review").is_visible()
    assert page.get_by_text("Walnut stool reveal").count() == 0  # another client's
    rejecting = page.locator(f"#post-{to_reject.pk}")
    expect(rejecting.get_by_label("The post's video")).to_be_visible()
    expect(rejecting.get_by_text("Everyone")).to_be_visible()
    snap(page, "client-review")

    # Rejecting without a comment is refused; the name typed is kept
    rejecting.get_by_label("Your name").fill("Luna Baker")
    rejecting.get_by_role("button", name="Reject").click()
    page.wait_for_load_state()
    rejecting = page.locator(f"#post-{to_reject.pk}")
    expect(rejecting.get_by_role("alert")).to_contain_text("Say what should change")
    expect(rejecting.get_by_label("Your name")).to_have_value("Luna Baker")
    snap(page, "client-review-refused")

    rejecting.get_by_label("Comment").fill("The loaf looks burnt, use the second take")
    rejecting.get_by_role("button", name="Reject").click()
    page.wait_for_load_state()
    expect(page.locator("#messages")).to_contain_text("Rejected: the agency has your comment")

    # At phone width, the client approves the other post
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    approving = page.locator(f"#post-{to_approve.pk}")
    approving.get_by_label("Your name").fill("Luna Baker")
    button = approving.get_by_role("button", name="Approve")
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]  # reachable, not cut off
    button.click()
    page.wait_for_load_state()
    expect(page.locator("#messages")).to_contain_text("Approved: it will go out as shown")
    snap(page, "client-review-decided")
    assert page.console_errors == []

    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        rejected, approved = Post.objects.get(pk=to_reject.pk), Post.objects.get(pk=to_approve.pk)
        assert (rejected.status, rejected.review_outcome) == (PostStatus.DRAFT, ReviewOutcome.REJECTED)
        assert (approved.status, approved.review_outcome) == (PostStatus.SCHEDULED, ReviewOutcome.APPROVED)
        assert list(ConsentRecord.objects.values_list("reviewer_name", "decision")) == [
            ("Luna Baker", "rejected"),
            ("Luna Baker", "approved"),
        ]
    connection.set_schema_to_public()
