"""The bell in a real browser under the strict CSP: a post failing in the worker raises the unread
count without a reload, and the notification opens the post. Screenshots of the centre and of
the email it sends, at desktop and phone width."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.notifications.delivery import _email_for
from apps.notifications.models import Channel, Notification
from apps.posts.services import post_schedule
from apps.users.models import User
from tenants.models import Agency
from tests.browser.conftest import PHONE, Stack, sign_in, snap
from tests.factories import PostFactory, TikTokAccountFactory


def test_a_failure_raises_the_bell_without_a_reload_and_opens_the_post(
    stack: Stack, stack_scheduler: None, make_agency: Any, page: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        owner = User.objects.get(email="owner@committed.example")
        account = TikTokAccountFactory(username="lunabakes")
        post = PostFactory(account=account, created_by=owner, caption="Croissant day", status="draft")
    sign_in(page, stack, agency)
    page.goto(stack.url(agency, "/"))
    bell = page.locator("a.bell")
    expect(bell).to_be_visible()
    expect(bell.locator(".bell-count")).to_have_count(0)
    page.evaluate("window.postlineNotReloaded = true")

    # When the post is due and the worker finds its account needs reconnecting
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)
        TikTokAccount.objects.filter(pk=account.pk).update(
            status=AccountStatus.NEEDS_REAUTH, status_reason="TikTok refused the refresh token."
        )

    # Then the bell counts it, on the same page (no reload)
    expect(bell.locator(".bell-count")).to_have_text("1", timeout=40_000)
    assert page.evaluate("window.postlineNotReloaded") is True
    assert page.console_errors == []

    # and opening it goes to the centre, then to the post
    bell.click()
    page.wait_for_url(stack.url(agency, "/notifications/"))
    item = page.get_by_role("button", name="A post for @lunabakes failed")
    expect(item).to_contain_text("Reconnect")
    expect(bell.locator(".bell-count")).to_have_text("1")
    snap(page, "notifications-centre")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 860})
    item.click()
    page.wait_for_url(stack.url(agency, f"/posts/{post.pk}/"))
    expect(page.locator("body")).to_contain_text("Croissant day")
    expect(bell.locator(".bell-count")).to_have_count(0)
    assert page.console_errors == []

    # The email it sends, as a mail client shows it
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        rows = list(
            Notification.objects.filter(recipient=owner, channel=Channel.EMAIL).select_related(
                "event", "recipient"
            )
        )
        message = _email_for(owner, rows, Agency.objects.get(pk=agency.pk))
    html = message.alternatives[0][0]
    assert f"/posts/{post.pk}/" in str(html)
    page.goto("about:blank")  # a blank page of its own: our site's CSP would drop the email's inline styles
    page.set_content(str(html))
    snap(page, "notifications-email")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
