"""Lists paged by keyset (apps.common.pagination): "next" and "previous" links that keep the
filters and work with and without htmx, an order that never ties, nothing lost or shown twice
when rows arrive between two pages, and query counts that do not grow with the rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.posts.models import Post, PostStatus
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory
from tests.test_composer import attr, find, html, text

pytestmark = pytest.mark.django_db
OWNER = "owner@shared.example"


def signed_in(agency: Agency, email: str = OWNER) -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def member(agency: Agency, role: str, *accounts: TikTokAccount) -> Client:
    email = f"{role}-lists@alpha.example"
    with schema_context(agency.schema_name):
        user = User.objects.create_user(email, OWNER_PASSWORD, role=role)
        for account in accounts:
            access_set(user=user, account=account, perms={Perm.VIEW, Perm.DRAFT}, by=None)
    return signed_in(agency, email)


def link(response: Any, rel: str) -> str | None:
    """The page's own link to the next or previous page (what a person clicks)."""
    found = [a for a in find(html(response), "a") if attr(a, "rel") == rel]
    return unescape(attr(found[0], "href") or "") if found else None


def caption_cells(response: Any) -> list[str]:
    return [text(find(row, "td")[2]) for row in find(find(html(response), "tbody")[0], "tr")]


def walk_pages(client: Client, url: str, between: Callable[[int], None] = lambda _: None) -> list[list[str]]:
    """Every page from `url` on, following "next"; `between(n)` runs after page n is read."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200
        pages.append(caption_cells(response))
        between(len(pages))
        next_url = link(response, "next")
        assert len(pages) < 50, "the pages do not end"
    return pages


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len([q for q in captured if not q["sql"].startswith("SET search_path")])


# --- The posts list ---


def make_posts(count: int, *, account: TikTokAccount | None = None, **fields: Any) -> list[Post]:
    account = account or TikTokAccountFactory()
    return [PostFactory(account=account, caption=f"Post {index:03d}", **fields) for index in range(count)]


def test_the_posts_list_pages_through_every_post_once_in_a_stable_order(alpha: Agency) -> None:
    # Given 60 posts of which 50 share one scheduled time and one creation time (only the id tells
    # them apart), and 3 drafts without a time
    same = timezone.now().replace(microsecond=0) + dt.timedelta(days=3)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        tied = make_posts(50, account=account, scheduled_at=same)
        Post.objects.filter(pk__in=[p.pk for p in tied]).update(created_at=same - dt.timedelta(days=1))
        for index in range(7):
            PostFactory(
                account=account, caption=f"Later {index}", scheduled_at=same + dt.timedelta(hours=index + 1)
            )
        for index in range(3):
            PostFactory(account=account, caption=f"Idea {index}", status=PostStatus.DRAFT, scheduled_at=None)
    client = signed_in(alpha)

    # When the owner follows "Older" from the first page to the last
    pages = walk_pages(client, "/posts/")

    # Then there are three pages of at most 25, the drafts without a time on top, then the newest
    # scheduled, and every post appears exactly once
    assert [len(page) for page in pages] == [25, 25, 10]
    shown = [caption for page in pages for caption in page]
    assert sorted(shown[:3]) == ["Idea 0", "Idea 1", "Idea 2"]
    assert shown[3:10] == [f"Later {index}" for index in reversed(range(7))]
    assert len(set(shown)) == 60

    # And "Newer" from the last page shows the second page again, then the first
    last = client.get(link(client.get(link(client.get("/posts/"), "next") or ""), "next") or "")
    second = client.get(link(last, "prev") or "")
    assert caption_cells(second) == pages[1]
    first = client.get(link(second, "prev") or "")
    assert caption_cells(first) == pages[0] and link(first, "prev") is None
    assert "First page" in second.content.decode()


def test_posts_added_or_removed_between_two_pages_are_neither_lost_nor_shown_twice(alpha: Agency) -> None:
    # Given 40 scheduled posts, an hour apart
    start = timezone.now() + dt.timedelta(days=1)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        for index in range(40):
            PostFactory(
                account=account, caption=f"Post {index:03d}", scheduled_at=start + dt.timedelta(hours=index)
            )
    client = signed_in(alpha)

    def meanwhile(page: int) -> None:
        if page != 1:
            return
        # While the first page is read: three newer posts arrive (they belong before it), one
        # arrives among those not yet seen, and one not yet seen is deleted
        with schema_context(alpha.schema_name):
            for index in range(3):
                PostFactory(
                    account=account, caption=f"Newer {index}", scheduled_at=start + dt.timedelta(days=30)
                )
            PostFactory(
                account=account, caption="Arrived later", scheduled_at=start + dt.timedelta(minutes=90)
            )
            Post.objects.get(caption="Post 005").delete()

    pages = walk_pages(client, "/posts/", between=meanwhile)

    # Then the pages after the first hold exactly the posts not yet seen, once each: the
    # one that arrived among them included, the deleted one and the newer ones not
    shown = [caption for page in pages for caption in page]
    assert len(shown) == len(set(shown))
    assert set(shown) == {f"Post {index:03d}" for index in range(40)} - {"Post 005"} | {"Arrived later"}
    assert pages[0] == [f"Post {index:03d}" for index in reversed(range(15, 40))]


def test_the_posts_list_keeps_its_filters_on_the_page_links_and_swaps_in_place_with_htmx(
    alpha: Agency,
) -> None:
    with schema_context(alpha.schema_name):
        mine = TikTokAccountFactory()
        make_posts(30, account=mine, status=PostStatus.SCHEDULED)
        make_posts(30)  # another account's
    client = signed_in(alpha)

    first = client.get(f"/posts/?account={mine.pk}&status=scheduled")
    older = link(first, "next")
    assert older is not None and f"account={mine.pk}" in older and "status=scheduled" in older
    fragment = client.get(older, HTTP_HX_REQUEST="true")
    body = fragment.content.decode()

    # The fragment is the list alone (no page around it), with the rest of this account's posts
    assert "<html" not in body and 'id="post-list"' in body
    assert len(caption_cells(fragment)) == 5
    nav = find(html(fragment), "nav", **{"aria-label": "Pages"})[0]
    assert all(
        attr(a, "hx-target") == "#post-list" and attr(a, "hx-push-url") == "true" for a in find(nav, "a")
    )
    assert "HX-Request" in fragment["Vary"]
    # Without htmx the same URL is the whole page
    assert "<html" in client.get(older).content.decode()


def test_a_cursor_that_is_not_ours_shows_the_first_page(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        make_posts(3)
    client = signed_in(alpha)
    for cursor in ("nonsense", "W1sidCIsIm5vdCBhIGRhdGUiXV0", "W10", "%00"):
        response = client.get(f"/posts/?after={cursor}")
        assert response.status_code == 200 and len(caption_cells(response)) == 3


def test_the_posts_list_pages_only_through_posts_the_person_may_see(alpha: Agency, beta: Agency) -> None:
    with schema_context(alpha.schema_name):
        granted = TikTokAccountFactory()
        make_posts(30, account=granted)
        hidden = TikTokAccountFactory()
        make_posts(30, account=hidden)
    with schema_context(beta.schema_name):
        theirs = TikTokAccountFactory()
    editor = member(alpha, Role.EDITOR, granted)

    # Every page holds only the granted account's posts; another account's or agency's id in the
    # filter changes nothing
    assert sum(len(page) for page in walk_pages(editor, "/posts/")) == 30
    for other in (hidden, theirs):
        assert sum(len(page) for page in walk_pages(editor, f"/posts/?account={other.pk}")) == 30


def test_the_posts_lists_query_count_does_not_grow_with_posts(alpha: Agency) -> None:
    client = signed_in(alpha)
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        make_posts(30, account=account)
    few_first, few_next = (
        queries(client, "/posts/"),
        queries(client, link(client.get("/posts/"), "next") or ""),
    )
    with schema_context(alpha.schema_name):
        for _ in range(5):
            make_posts(30)
    many_first, many_next = (
        queries(client, "/posts/"),
        queries(client, link(client.get("/posts/"), "next") or ""),
    )

    # The agency (by host), the session, the user, the accounts for the filter, the page of
    # posts with their accounts, and whether the person may write posts
    assert few_first == many_first == few_next == many_next == 6


def test_old_numbered_page_links_still_answer(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        make_posts(3)
    response = signed_in(alpha).get("/posts/?page=7")
    assert response.status_code == 200 and len(caption_cells(response)) == 3
    assert not re.search(r"page=\d", response.content.decode())


# --- The audit log ---


def audit_rows(response: Any) -> list[str]:
    rows = find(find(html(response), "tbody")[0], "tr")
    # (an entry's changes sit in a row of their own under it)
    return [text(find(row, "td")[3]) for row in rows if "changes-row" not in (attr(row, "class") or "")]


def test_the_audit_log_pages_by_keyset_with_ties_and_new_entries_between_pages(alpha: Agency) -> None:
    from apps.audit.models import AuditLog

    # Given 120 entries of which 60 were written in the same instant
    instant = timezone.now() - dt.timedelta(hours=1)
    with schema_context(alpha.schema_name):
        AuditLog.objects.bulk_create(
            AuditLog(action="post.created", object_repr=f"Entry {index:03d}", created_at=instant)
            for index in range(60)
        )
        AuditLog.objects.bulk_create(
            AuditLog(
                action="post.edited",
                object_repr=f"Entry {index:03d}",
                created_at=instant - dt.timedelta(minutes=index),
            )
            for index in range(60, 120)
        )
    client = signed_in(alpha)
    with schema_context(alpha.schema_name):
        existing = AuditLog.objects.count()  # the 120 and the sign-in's

    def meanwhile(page: int) -> None:
        if page == 1:  # a new entry arrives while the first page is read
            with schema_context(alpha.schema_name):
                AuditLog.objects.create(action="post.created", object_repr="Arrived later")

    pages: list[list[str]] = []
    next_url: str | None = "/audit/?action=&actor="
    while next_url is not None:
        response = client.get(next_url)
        pages.append(audit_rows(response))
        meanwhile(len(pages))
        next_url = link(response, "next")

    # Then every entry shows once, 50 a page, none twice, the new one not pushed into later pages
    shown = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [50, 50, existing - 100]
    entries = [row for row in shown if row.startswith("Entry")]
    assert sorted(entries) == [f"Entry {index:03d}" for index in range(120)]
    assert "Arrived later" not in shown
    # No exact count of the whole log is shown (or asked of the database)
    assert "entries" not in text(find(html(client.get("/audit/")), "p", **{"class": "muted"})[0]).split()[0]


def test_the_audit_logs_query_count_does_not_grow_with_entries(alpha: Agency) -> None:
    from apps.audit.models import AuditLog

    client = signed_in(alpha)

    def add(count: int) -> None:
        with schema_context(alpha.schema_name):
            AuditLog.objects.bulk_create(
                AuditLog(action="post.created", object_type="posts.post", object_id=str(post.pk))
                for post in make_posts(count)
            )

    add(60)
    few = queries(client, "/audit/"), queries(client, link(client.get("/audit/"), "next") or "")
    add(120)
    many = queries(client, "/audit/"), queries(client, link(client.get("/audit/"), "next") or "")

    # The agency, the session, the user, the filters' choices (people, accounts, actions), the
    # page of entries, which of their posts still exist, and the latest large exports
    assert few == many == (9, 9)


# --- The approvals queue ---


def review_titles(response: Any) -> list[str]:
    return [text(h2) for h2 in find(html(response), "h2") if "review-title" in (attr(h2, "class") or "")]


def test_the_approvals_queue_pages_soonest_first_and_a_decision_comes_back_to_its_page(alpha: Agency) -> None:
    # Given 23 posts waiting for approval, written by an editor, one an hour from tomorrow
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    with schema_context(alpha.schema_name):
        editor = User.objects.create_user("editor-queue@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        account = TikTokAccountFactory(requires_approval=True)
        for index in range(23):
            PostFactory(
                account=account,
                caption=f"Waiting {index:02d}",
                status=PostStatus.PENDING_APPROVAL,
                scheduled_at=start + dt.timedelta(hours=index),
                created_by=editor,
            )
    owner = signed_in(alpha)

    # When the owner opens the queue, the soonest 20 are there and it says how many wait in all
    first = owner.get("/posts/approvals/")
    assert "23 posts to review, 20 on this page" in text(html(first))
    assert len(review_titles(first)) == 20
    later = link(first, "next")
    assert later is not None and link(first, "prev") is None

    # And "Later" shows the other 3, each post once
    second = owner.get(later)
    assert len(review_titles(second)) == 3 and link(second, "next") is None
    shown = first.content.decode() + second.content.decode()
    with schema_context(alpha.schema_name):
        for post in Post.objects.filter(status=PostStatus.PENDING_APPROVAL):
            assert shown.count(f'id="post-{post.pk}"') == 1

    # A decision taken on the second page brings the reviewer back to that page
    nexts = set(re.findall(r'name="next" value="([^"]*)"', second.content.decode()))
    assert {unescape(value) for value in nexts} == {later}

    # With htmx, the link swaps only the queue
    fragment = owner.get(later, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section class="card" id="approvals">')
    assert "<html" not in fragment


def test_the_approvals_queues_query_count_does_not_grow_with_waiting_posts(alpha: Agency) -> None:
    owner = signed_in(alpha)
    start = timezone.now() + dt.timedelta(days=1)
    with schema_context(alpha.schema_name):
        editor = User.objects.create_user("editor-count@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        account = TikTokAccountFactory(requires_approval=True)

    def wait(count: int) -> None:
        with schema_context(alpha.schema_name):
            for index in range(count):
                PostFactory(
                    account=account,
                    status=PostStatus.PENDING_APPROVAL,
                    scheduled_at=start + dt.timedelta(minutes=index),
                    created_by=editor,
                )

    wait(5)
    few = queries(owner, "/posts/approvals/")
    wait(60)
    many = queries(owner, "/posts/approvals/")
    # The agency, the session, the user, the page of posts, their videos and photos, and (with
    # more than a page) the queue's size
    assert many == few + 1 <= 8, (few, many)


# --- The accounts page ---


def test_the_accounts_page_pages_by_name_each_account_once_in_flat_queries(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        for index in range(30):
            TikTokAccountFactory(username=f"client{index:02d}")
    owner = signed_in(alpha)

    def names(response: Any) -> list[str]:
        return re.findall(r"<strong>@(client\d\d)</strong>", response.content.decode())

    first = owner.get("/accounts/")
    assert names(first) == [f"client{index:02d}" for index in range(25)]
    more = link(first, "next")
    assert more is not None
    second = owner.get(more)
    assert names(second) == [f"client{index:02d}" for index in range(25, 30)] and link(second, "next") is None
    assert queries(owner, "/accounts/") == queries(owner, more)
