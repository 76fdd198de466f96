"""Comments in a real browser: a client comments on the review page through a link (a refusal keeps
what they typed), then the owner reads it on the post page and answers the team internally
through htmx, mentioning someone, without the page reloading; the client's page never shows the
internal comment. Screenshots in artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.comments.models import Comment, Visibility
from apps.posts.models import PostStatus
from apps.reviews.models import LinkKind
from apps.reviews.services import client_link_create
from apps.users.models import Role, User
from tests.browser.conftest import Stack, sign_in, snap
from tests.conftest import OWNER_PASSWORD
from tests.factories import PostFactory, TikTokAccountFactory


def test_a_client_comments_through_a_link_and_the_team_answers_internally(
    stack: Stack, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    suffix = uuid.uuid4().hex[:8]
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account = TikTokAccountFactory(
            username="luna.bakes", open_id=f"luna-{suffix}", client_label="Luna Bakery"
        )
        owner = User.objects.get(email="owner@committed.example")
        manager = User.objects.create_user(
            "mia@committed.example", OWNER_PASSWORD, role=Role.MANAGER, name="Mia"
        )
        access_set(user=manager, account=account, perms=ROLE_DEFAULTS[Role.MANAGER], by=None)
        post = PostFactory(
            account=account,
            caption="Sourdough launch day",
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=timezone.now() + dt.timedelta(days=1),
            created_by=owner,
        )
        _, token = client_link_create(
            kind=LinkKind.REVIEW, client_label="Luna Bakery", days=7, posts=[post], recipient="Luna", by=owner
        )
    connection.set_schema_to_public()

    # The client opens the link and sends a comment; without a name it is refused, text kept
    page.goto(stack.url(agency, f"/client/review/{token}/"))
    thread = page.locator(f"#comments-client-{post.pk}")
    thread.get_by_label("Message for the agency").fill("Could the loaf be <b>golden</b>?")
    thread.get_by_role("button", name="Send to the agency").click()
    page.wait_for_load_state()
    thread = page.locator(f"#comments-client-{post.pk}")
    expect(thread.get_by_role("alert")).to_contain_text("Type your name")
    expect(thread.get_by_label("Message for the agency")).to_have_value("Could the loaf be <b>golden</b>?")
    thread.get_by_label("Name to sign with").fill("Luna Baker")
    thread.get_by_role("button", name="Send to the agency").click()
    page.wait_for_load_state()
    expect(page.locator("#messages")).to_contain_text("Your comment was sent to the agency.")
    thread = page.locator(f"#comments-client-{post.pk}")
    expect(thread.locator(".comment-body")).to_have_text("Could the loaf be <b>golden</b>?")  # as text
    expect(thread.locator(".comment-author")).to_have_text("Luna Baker (Luna Bakery)")
    snap(page, "client-comment")
    assert page.console_errors == []
    page.context.clear_cookies()

    # The owner reads it on the post page and answers the team internally, through htmx
    sign_in(page, stack, agency)
    page.goto(stack.url(agency, f"/posts/{post.pk}/"))
    page.evaluate("window.notReloaded = true")
    client_thread = page.locator(f"#comments-client-{post.pk}")
    expect(client_thread.locator(".comment-body")).to_have_text("Could the loaf be <b>golden</b>?")
    internal = page.locator(f"#comments-internal-{post.pk}")
    internal.get_by_label("Comment for the team").fill("@mia can we reshoot before Friday?")
    internal.get_by_role("button", name="Add internal comment").click()
    internal = page.locator(f"#comments-internal-{post.pk}")
    expect(internal.get_by_role("status")).to_contain_text("Comment added. Mentioned: Mia.")
    expect(internal.locator("mark.mention")).to_have_text("@mia")
    expect(internal.get_by_label("Comment for the team")).to_have_value("")
    assert page.evaluate("window.notReloaded") is True  # the thread was swapped, not the page
    snap(page, "post-comments")
    assert page.console_errors == []

    # The client's page still shows only the client thread
    page.context.clear_cookies()
    page.goto(stack.url(agency, f"/client/review/{token}/"))
    expect(page.locator(f"#comments-client-{post.pk}")).to_be_visible()
    assert page.get_by_text("can we reshoot").count() == 0

    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        assert list(Comment.objects.order_by("created_at").values_list("visibility", "author_name")) == [
            (Visibility.CLIENT, "Luna Baker"),
            (Visibility.INTERNAL, ""),
        ]
    connection.set_schema_to_public()
