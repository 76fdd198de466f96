"""Approvals, end to end through the pages: an editor's post on an account that requires approval
waits for a manager or the account's client reviewer, who approve it (it is scheduled) or reject
it with a comment (back to a draft); the author sees the decision; editing an approved post sends
it back. TikTok is the fake over a real socket (the composer asks it about the creator)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, Perm, access_set
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus, PrivacyLevel, PublishMode, ReviewOutcome
from apps.publishing.models import DueJob
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory
from tests.mp4 import mp4_bytes
from tests.test_composer import (
    PRIVATE,
    attr,
    by_id,
    compose_data,
    connect,
    find,
    html,
    text,
    upload,
    uploaded_id,
)

pytestmark = pytest.mark.django_db


def signed_in(agency: Agency, email: str) -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, f"{email} could not sign in"
    return client


def member(agency: Agency, email: str, role: str, *accounts: TikTokAccount) -> User:
    with schema_context(agency.schema_name):
        user = User.objects.create_user(email, OWNER_PASSWORD, role=role, name=email.split("@")[0].title())
        for account in accounts:
            access_set(user=user, account=account, perms=ROLE_DEFAULTS[role], by=None)
        return user


@pytest.fixture
def account(alpha: Agency, tiktok: FakeTikTok) -> TikTokAccount:
    """A connected account whose posts need approval; the owner turns it on from the accounts page."""
    account = connect(alpha, tiktok)
    owner = signed_in(alpha, "owner@shared.example")
    response = owner.post(f"/accounts/{account.pk}/approval/", {"requires_approval": "on"}, follow=True)
    assert "now wait for approval" in response.content.decode()
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
        assert account.requires_approval
        entry = AuditLog.objects.get(action="account.approval_changed")
        assert entry.changes == {"requires_approval": [False, True]}
        assert entry.account_id == account.pk
    return account


def editors_post(alpha: Agency, account: TikTokAccount) -> tuple[Client, str, Post]:
    """The editor (a member already) signs in, uploads a video and schedules a post for `account`:
    their client, the video's id and the post as saved."""
    editor = signed_in(alpha, "editor@alpha.example")
    media_id = uploaded_id(editor)
    editor.post("/posts/new/", compose_data(account, media_id))
    return editor, media_id, the_post(alpha)


def approve(client: Client, post: Post, page: str = "", **data: str) -> HttpResponse:
    """Press Approve on `page` (the post's own page by default), sending what its form holds."""
    html = client.get(page or f"/posts/{post.pk}/").content.decode()
    form = re.search(rf'action="/posts/{post.pk}/approve/">(.*?)</form>', html, re.S)
    assert form is not None, "no Approve button for this post"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))
    return client.post(f"/posts/{post.pk}/approve/", {**fields, **data}, follow=True)


def the_post(alpha: Agency) -> Post:
    with schema_context(alpha.schema_name):
        return Post.objects.select_related("reviewed_by").get()


def test_an_editors_post_waits_then_the_client_approves_it(alpha: Agency, account: TikTokAccount) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    editor = signed_in(alpha, "editor@alpha.example")

    compose = editor.get(f"/posts/new/?account={account.pk}").content.decode()
    assert 'id="approval-note"' in compose
    response = editor.post("/posts/new/", compose_data(account, uploaded_id(editor)), follow=True)

    assert "Sent for approval." in response.content.decode()
    post = the_post(alpha)
    assert post.status == PostStatus.PENDING_APPROVAL
    with schema_context(alpha.schema_name):
        assert not DueJob.objects.filter(post_id=post.pk).exists()  # nothing will be dispatched

    client = signed_in(alpha, "client@alpha.example")
    home = client.get("/").content.decode()
    assert "Waiting for your approval" in home and "Review 1 post" in home
    queue = client.get("/posts/approvals/").content.decode()
    assert "Morning bake" in queue and f"/posts/media/{post.media.get().pk}/file/" in queue
    # The reviewer watches the video they approve (from the object store, by a presigned URL).
    preview = client.get(f"/posts/media/{post.media.get().pk}/file/")
    assert preview.status_code == 302 and httpx.get(preview["Location"]).status_code == 200

    response = approve(client, post, "/posts/approvals/")

    assert response.redirect_chain == [("/posts/approvals/", 302)]
    page = response.content.decode()
    assert "Approved “Morning bake" in page and "Nothing is waiting for your approval." in page
    post = the_post(alpha)
    assert (post.status, post.review_outcome) == (PostStatus.SCHEDULED, ReviewOutcome.APPROVED)
    assert post.reviewed_by is not None and post.reviewed_by.email == "client@alpha.example"
    with schema_context(alpha.schema_name):
        assert DueJob.objects.get(post_id=post.pk).due_at == post.scheduled_at
        actions = list(
            AuditLog.objects.filter(object_id=str(post.pk))
            .order_by("created_at")
            .values_list("action", flat=True)
        )
        assert actions == ["post.created", "post.submitted", "post.approved"]
        approved = AuditLog.objects.get(action="post.approved")
        assert approved.actor_email == "client@alpha.example" and approved.account_id == account.pk

    # The author sees the outcome on their dashboard.
    home = editor.get("/").content.decode()
    assert "Decisions on your posts" in home and "Approved" in home and "Client" in home


def test_a_rejection_needs_a_comment_and_returns_the_post_to_its_author(
    alpha: Agency, account: TikTokAccount
) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    editor, _, post = editors_post(alpha, account)
    manager = signed_in(alpha, "manager@alpha.example")

    refused = manager.post(f"/posts/{post.pk}/reject/", {"comment": "   ", "next": "/posts/approvals/"})

    assert refused.status_code == 200
    assert "Say what should change, so the author can fix it." in refused.content.decode()
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL

    comment = "The price in the caption is last year's; please use €12."
    response = manager.post(f"/posts/{post.pk}/reject/", {"comment": comment, "next": f"/posts/{post.pk}/"})

    assert response.status_code == 302
    post = the_post(alpha)
    assert (post.status, post.review_outcome, post.review_comment) == (
        PostStatus.DRAFT,
        ReviewOutcome.REJECTED,
        comment,
    )
    with schema_context(alpha.schema_name):
        rejected = AuditLog.objects.get(action="post.rejected")
        assert rejected.changes["comment"] == comment and rejected.actor_email == "manager@alpha.example"
    home = editor.get("/").content.decode()
    assert "Rejected" in home and "please use €12" in home
    detail = editor.get(f"/posts/{post.pk}/").content.decode()
    assert "Rejected by Manager" in detail and "please use €12" in detail and "submit it again" in detail


def test_editing_an_approved_post_sends_it_back_for_approval(alpha: Agency, account: TikTokAccount) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    editor, media_id, post = editors_post(alpha, account)
    approve(signed_in(alpha, "client@alpha.example"), post)
    assert the_post(alpha).status == PostStatus.SCHEDULED

    response = editor.post(
        f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="Evening bake"), follow=True
    )

    assert "Sent for approval." in response.content.decode()
    post = the_post(alpha)
    assert (post.status, post.caption, post.review_outcome) == (
        PostStatus.PENDING_APPROVAL,
        "Evening bake",
        "",
    )
    with schema_context(alpha.schema_name):
        assert not DueJob.objects.filter(post_id=post.pk).exists()
    assert (
        "Evening bake" in signed_in(alpha, "client@alpha.example").get("/posts/approvals/").content.decode()
    )


def test_who_reviews_what(alpha: Agency, account: TikTokAccount) -> None:
    """A client reviewer of another account neither sees nor decides; a manager's own posts go
    straight out; an editor cannot publish now on an account that requires approval."""
    with schema_context(alpha.schema_name):
        other = TikTokAccountFactory(username="otherclient")
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    member(alpha, "client.other@alpha.example", Role.CLIENT, other)
    editor = signed_in(alpha, "editor@alpha.example")
    media_id = uploaded_id(editor)

    now = editor.post("/posts/new/", compose_data(account, media_id, action="now"))
    assert "Publish now is not available for @" in now.content.decode()
    editor.post("/posts/new/", compose_data(account, media_id))
    post = the_post(alpha)

    outsider = signed_in(alpha, "client.other@alpha.example")
    # A reviewer does not compose: the page says so, and whom to ask, instead of offering accounts.
    assert (
        "Your role (Client reviewer) lets you view and approve posts, but not write them."
        in outsider.get("/posts/new/").content.decode()
    )
    assert 'href="/posts/new/"' not in outsider.get("/posts/").content.decode()
    assert upload(outsider, mp4_bytes()).status_code == 404
    assert "Morning bake" not in outsider.get("/posts/approvals/").content.decode()
    assert outsider.get(f"/posts/{post.pk}/").status_code == 404
    assert outsider.post(f"/posts/{post.pk}/approve/").status_code == 404
    assert outsider.post(f"/posts/{post.pk}/reject/", {"comment": "no"}).status_code == 404
    # The editor may not approve their own post either.
    assert editor.post(f"/posts/{post.pk}/approve/").status_code == 404
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL

    manager = signed_in(alpha, "manager@alpha.example")
    response = manager.post(
        "/posts/new/", compose_data(account, uploaded_id(manager), caption="Manager's own")
    )
    assert response.status_code == 302
    with schema_context(alpha.schema_name):
        own = Post.objects.get(caption="Manager's own")
        assert own.status == PostStatus.SCHEDULED and DueJob.objects.filter(post_id=own.pk).exists()


def test_approving_a_post_whose_time_has_passed_is_refused_with_what_to_do(
    alpha: Agency, account: TikTokAccount
) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(
            account=account,
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=timezone.now() - dt.timedelta(hours=1),
        )
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    client = signed_in(alpha, "client@alpha.example")

    response = approve(client, post)

    assert "was not approved: Its time has passed" in response.content.decode()
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=post.pk).status == PostStatus.PENDING_APPROVAL
        assert not DueJob.objects.filter(post_id=post.pk).exists()


def test_only_those_who_manage_an_account_and_approve_its_posts_change_its_approval_rule(
    alpha: Agency, account: TikTokAccount
) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    editor = signed_in(alpha, "editor@alpha.example")
    with schema_context(alpha.schema_name):
        editor_user = User.objects.get(email="editor@alpha.example")
    # Drafting, and even managing the connection (to reconnect it), is not enough
    for perms in ({Perm.VIEW, Perm.DRAFT}, {Perm.VIEW, Perm.DRAFT, Perm.MANAGE}):
        with schema_context(alpha.schema_name):
            access_set(user=editor_user, account=account, perms=perms, by=None)
        assert "Stop requiring approval" not in editor.get("/accounts/").content.decode()
        response = editor.post(f"/accounts/{account.pk}/approval/", {"requires_approval": "off"})
        assert response.status_code == 404
        with schema_context(alpha.schema_name):
            assert TikTokAccount.objects.get(pk=account.pk).requires_approval
    with schema_context(alpha.schema_name):
        access_set(user=editor_user, account=account, perms={Perm.DRAFT, Perm.MANAGE, Perm.APPROVE}, by=None)
    assert "Stop requiring approval" in editor.get("/accounts/").content.decode()
    editor.post(f"/accounts/{account.pk}/approval/", {"requires_approval": "off"})
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.objects.get(pk=account.pk).requires_approval


def test_a_post_changed_after_the_reviewer_opened_it_is_not_approved_unseen(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given the client reviewer has the approvals page open on an editor's post
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    editor, media_id, post = editors_post(alpha, account)
    client = signed_in(alpha, "client@alpha.example")
    queue = client.get("/posts/approvals/").content.decode()
    stale = re.search(r'name="seen" value="([^"]*)"', queue)
    assert stale is not None

    # When the editor changes the caption (it stays waiting) and the reviewer presses Approve
    editor.post(f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="Evening bake"))
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL
    response = client.post(
        f"/posts/{post.pk}/approve/", {"seen": stale.group(1), "next": "/posts/approvals/"}, follow=True
    )

    # Then it is not approved, the reviewer is told why, and the queue shows the new caption
    page = response.content.decode()
    assert "was not approved: It changed after you opened it." in page and "Evening bake" in page
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL
    # and approving what is now on the page works
    assert "Approved “Evening bake" in approve(client, post, "/posts/approvals/").content.decode()
    assert the_post(alpha).status == PostStatus.SCHEDULED


def test_moving_a_post_that_needs_approval_keeps_time_to_approve_it(
    alpha: Agency, account: TikTokAccount
) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    editor, _, post = editors_post(alpha, account)
    before = post.scheduled_at
    soon = timezone.now() + dt.timedelta(minutes=2)

    response = editor.post(
        f"/posts/{post.pk}/reschedule/",
        {
            "scheduled_date": soon.date().isoformat(),
            "scheduled_time": soon.strftime("%H:%M"),
            "time_zone": "UTC",
        },
        follow=True,
    )

    assert "choose a time at least 5 minutes from now" in response.content.decode()
    post = the_post(alpha)
    assert (post.status, post.scheduled_at) == (PostStatus.PENDING_APPROVAL, before)


def test_nobody_approves_a_post_they_wrote(alpha: Agency, account: TikTokAccount) -> None:
    # Given an editor who may also approve, but not schedule without approval
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    with schema_context(alpha.schema_name):
        access_set(
            user=User.objects.get(email="editor@alpha.example"),
            account=account,
            perms={Perm.DRAFT, Perm.APPROVE},
            by=None,
        )
    editor, _, post = editors_post(alpha, account)
    assert post.status == PostStatus.PENDING_APPROVAL

    # Their own post is not in their queue, its page says who decides, and a forged approval fails
    assert "Nothing is waiting for your approval." in editor.get("/posts/approvals/").content.decode()
    page = editor.get(f"/posts/{post.pk}/").content.decode()
    assert "someone else with approval rights approves it" in page and "/approve/" not in page
    forged = editor.post(
        f"/posts/{post.pk}/approve/", {"seen": post.updated_at.isoformat()}, follow=True
    ).content.decode()
    assert "was not approved: You wrote or changed this post" in forged
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL

    # The client reviewer approves it
    assert "Approved “" in approve(signed_in(alpha, "client@alpha.example"), post).content.decode()
    assert the_post(alpha).status == PostStatus.SCHEDULED


NOW_UNAVAILABLE = (
    "Publish now is not available for {account}: its posts are approved before they go out. "
    "Choose a time at least 5 minutes from now and press Schedule to send it for approval."
)


def test_publish_now_is_off_with_the_reason_where_posts_wait_for_approval(
    alpha: Agency, account: TikTokAccount, tiktok: FakeTikTok
) -> None:
    free = connect(alpha, tiktok, PRIVATE)  # an account that does not require approval
    member(alpha, "editor@alpha.example", Role.EDITOR, account, free)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    editor = signed_in(alpha, "editor@alpha.example")
    reason = NOW_UNAVAILABLE.format(account=account)

    # On the account that requires approval, Publish now is off and says why, next to it
    page = html(editor.get(f"/posts/new/?account={account.pk}"))
    assert attr(by_id(page, "btn-now"), "disabled") is not None
    assert attr(by_id(page, "btn-schedule"), "disabled") is None
    assert attr(by_id(page, "now-unavailable"), "hidden") is None
    assert text(by_id(page, "now-unavailable")) == reason
    # and the account's fragment, which the page swaps in when the account changes, says the same
    fragment = html(editor.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))
    assert attr(by_id(fragment, "creator-info"), "data-now-unavailable") == reason

    # On an account without approval, and for a manager (who schedules without approval), it is on
    for client, chosen in ((editor, free), (signed_in(alpha, "manager@alpha.example"), account)):
        page = html(client.get(f"/posts/new/?account={chosen.pk}"))
        assert attr(by_id(page, "btn-now"), "disabled") is None
        assert attr(by_id(page, "now-unavailable"), "hidden") is not None
        assert attr(by_id(page, "creator-info"), "data-now-unavailable") == ""


def test_publish_now_on_an_account_that_requires_approval_is_refused_with_what_to_do(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given an editor whose posts on the account wait for approval, with a time hours ahead
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    editor = signed_in(alpha, "editor@alpha.example")
    later = timezone.now() + dt.timedelta(hours=5)

    # When they press Publish now anyway (a form sent without the page's script)
    response = editor.post(
        "/posts/new/",
        compose_data(
            account,
            uploaded_id(editor),
            action="now",
            scheduled_date=later.date().isoformat(),
            scheduled_time=later.strftime("%H:%M:%S"),
            time_zone="UTC",
        ),
    )

    # Then nothing is saved, and the page says Publish now is not available here and what to do,
    # at the top and next to the button, not as a problem with the date
    assert response.status_code == 200
    page = html(response)
    reason = NOW_UNAVAILABLE.format(account=account)
    assert text(by_id(page, "form-errors")) == f"Nothing was saved. {reason}"
    assert text(by_id(page, "now-unavailable")) == reason
    assert attr(by_id(page, "now-unavailable"), "class") == "field-error"
    assert attr(by_id(page, "scheduled_date-error"), "hidden") is not None
    assert "minutes from now, then submit it for approval" not in response.content.decode()
    with schema_context(alpha.schema_name):
        assert not Post.objects.exists()


@pytest.mark.parametrize("where", ["/posts/approvals/", "post page"])
def test_a_rejection_without_a_comment_says_so_at_the_top_and_takes_you_to_the_comment(
    alpha: Agency, account: TikTokAccount, where: str
) -> None:
    # Given a post waiting for the client reviewer
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    _, _, post = editors_post(alpha, account)
    client = signed_in(alpha, "client@alpha.example")
    back = where if where.startswith("/") else f"/posts/{post.pk}/"

    # When they press Reject with an empty comment
    response = client.post(f"/posts/{post.pk}/reject/", {"comment": "  ", "next": back})

    # Then a banner at the top of the page says the post was not rejected and why
    assert response.status_code == 200
    content = response.content.decode()
    page = html(response)
    banner = by_id(page, "review-error")
    assert attr(banner, "role") == "alert"
    assert text(banner) == (
        "“Morning bake 🍞 #sourdough” was not rejected: say what should change, so the author can fix it."
    )
    assert content.index('id="review-error"') < content.index(f'action="/posts/{post.pk}/approve/"')
    # and the comment box, marked invalid, takes the focus (the browser scrolls to it)
    comment = by_id(page, f"comment-{post.pk}")
    assert attr(comment, "autofocus") is not None and attr(comment, "aria-invalid") == "true"
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL
    # Nothing is focused or announced on the page before anyone acted
    before = client.get(back).content.decode()
    assert 'id="review-error"' not in before and "autofocus" not in before


def test_the_edit_page_of_a_rejected_post_shows_the_reviewers_comment_until_it_is_resubmitted(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given an editor's post the manager rejected with a comment
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    editor, media_id, post = editors_post(alpha, account)
    comment = "The price in the caption is last year's;\nplease use €12."
    signed_in(alpha, "manager@alpha.example").post(f"/posts/{post.pk}/reject/", {"comment": comment})
    post = the_post(alpha)
    assert post.reviewed_at is not None

    # When the author opens it in the composer
    page = html(editor.get(f"/posts/{post.pk}/edit/"))

    # Then the decision is at the top of the form: who, when (in their time zone), and what to change
    when = post.reviewed_at.astimezone(dt.UTC)
    assert text(by_id(page, "review-note")) == (
        f"Rejected by Manager on {when.day} {when:%B %Y, %H:%M} (UTC): "
        "The price in the caption is last year's; please use €12. "
        "Change what the reviewer asks for, then schedule it again."
    )
    content = editor.get(f"/posts/{post.pk}/edit/").content.decode()
    assert content.index('id="review-note"') < content.index('id="composer"')

    # and once it is sent for approval again, the old decision is gone
    editor.post(f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="Morning bake, €12"))
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL
    assert 'id="review-note"' not in editor.get(f"/posts/{post.pk}/edit/").content.decode()


def test_each_approval_card_shows_what_goes_to_tiktok_with_the_post(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given three posts waiting for the client reviewer: one with every switch and label on, one
    # with everything off, and one sent to the creator's inbox (which takes only the video)
    when = timezone.now() + dt.timedelta(days=1)
    with schema_context(alpha.schema_name):
        loud = PostFactory(
            account=account,
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=when,
            privacy_level=PrivacyLevel.FOLLOWER_OF_CREATOR,
            allow_comment=True,
            allow_duet=False,
            allow_stitch=True,
            commercial_disclosure=True,
            brand_organic=True,
            brand_content=True,
            is_aigc=True,
        )
        quiet = PostFactory(account=account, status=PostStatus.PENDING_APPROVAL, scheduled_at=when)
        inbox = PostFactory(
            account=account,
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=when,
            allow_duet=True,
            mode=PublishMode.INBOX,
        )
    member(alpha, "client@alpha.example", Role.CLIENT, account)

    # When they open their approvals
    page = html(signed_in(alpha, "client@alpha.example").get("/posts/approvals/"))

    # Then each card says what they are approving besides the caption and the video
    def facts(post: Post) -> dict[str, str]:
        (card,) = find(by_id(page, f"post-{post.pk}"), "dl")
        terms = [text(n) for n in card.children if not isinstance(n, str) and n.name == "dt"]
        values = [text(n) for n in card.children if not isinstance(n, str) and n.name == "dd"]
        return dict(zip(terms, values, strict=True))

    assert facts(loud) == {
        "Who can see it": "Followers",
        "Comments": "Allowed",
        "Duet": "Not allowed",
        "Stitch": "Allowed",
        "Commercial content": "Your brand (TikTok labels it “Promotional content”); "
        "Branded content (TikTok labels it “Paid partnership”)",
        "AI-generated": "Yes: TikTok labels it as AI-generated",
        "Sent as": "Post directly",
    }
    assert facts(quiet) == {
        "Who can see it": "Everyone",
        "Comments": "Not allowed",
        "Duet": "Not allowed",
        "Stitch": "Not allowed",
        "Commercial content": "None disclosed",
        "AI-generated": "No",
        "Sent as": "Post directly",
    }
    # No setting is shown as if TikTok's inbox would receive it.
    assert facts(inbox) == {
        "Sent as": "Send to the creator's TikTok inbox as a draft",
        "Caption and settings": "Chosen by the creator in TikTok when they post it: "
        "the inbox takes only the video.",
    }


def test_the_navigation_offers_what_the_person_may_do_not_what_their_role_usually_may(
    alpha: Agency, account: TikTokAccount
) -> None:
    def nav(email: str) -> str:
        html = signed_in(alpha, email).get("/").content.decode()
        return html[html.index('<nav aria-label="Main"') : html.index("</nav>")]

    # An editor without any account has nothing to write for; a client given Draft does
    member(alpha, "editor@alpha.example", Role.EDITOR)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    with schema_context(alpha.schema_name):
        client = User.objects.get(email="client@alpha.example")
        access_set(user=client, account=account, perms={Perm.APPROVE, Perm.DRAFT}, by=None)
    assert ">New post<" not in nav("editor@alpha.example")
    assert ">Approvals<" not in nav("editor@alpha.example")
    assert ">New post<" in nav("client@alpha.example") and ">Approvals<" in nav("client@alpha.example")
    # A viewer who was asked to approve an account's posts finds the queue
    member(alpha, "viewer@alpha.example", Role.VIEWER, account)
    with schema_context(alpha.schema_name):
        viewer = User.objects.get(email="viewer@alpha.example")
        access_set(user=viewer, account=account, perms={Perm.APPROVE}, by=None)
    assert ">Approvals<" in nav("viewer@alpha.example") and ">New post<" not in nav("viewer@alpha.example")


def test_the_navigation_marks_the_page_shown_and_gives_admins_their_pages_alone(
    alpha: Agency, account: TikTokAccount
) -> None:
    def header(client: Client, path: str) -> str:
        html = client.get(path).content.decode()
        return html[html.index('<header class="topbar">') : html.index("</header>")]

    owner = signed_in(alpha, "owner@shared.example")
    links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', header(owner, "/team/"))
    assert [label for _, _, label in links][:13] == [
        "Dashboard", "Calendar", "Posts", "Approvals", "New post", "Media", "Queues", "Accounts",
        "Analytics", "Reports", "Team", "Audit log", "Settings",
    ]  # fmt: skip
    assert [label for _, current, label in links if current] == ["Team"]
    assert ("/posts/", "", "Posts") in links
    # A member: none of the agency's administration, their name escaped in their menu, and a
    # sign-out form that carries the CSRF token.
    person = member(alpha, "viewer@alpha.example", Role.VIEWER, account)
    with schema_context(alpha.schema_name):
        User.objects.filter(pk=person.pk).update(name="<b>Vic</b> Viewer")
    viewer = header(signed_in(alpha, "viewer@alpha.example"), "/notifications/")
    assert ">Team<" not in viewer and ">Audit log<" not in viewer and ">Settings<" not in viewer
    assert "<summary>&lt;b&gt;Vic&lt;/b&gt;</summary>" in viewer and "<b>" not in viewer
    assert re.search(r'class="bell" href="/notifications/"[^>]* aria-current="page">\s*<svg', viewer)
    csrf = r'<input type="hidden" name="csrfmiddlewaretoken" value="\w+">'
    assert re.search(rf'action="/logout/">{csrf}<button', viewer)


def test_rescheduling_a_waiting_post_never_schedules_it_unapproved(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given an editor's post waiting for approval, and a manager who may schedule without approval
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    _, _, post = editors_post(alpha, account)
    later = timezone.now() + dt.timedelta(days=2)

    # When the manager, told on the button that it keeps waiting, moves it to another time
    manager = signed_in(alpha, "manager@alpha.example")
    assert "Reschedule (it keeps waiting for approval)" in manager.get(f"/posts/{post.pk}/").content.decode()
    response = manager.post(
        f"/posts/{post.pk}/reschedule/",
        {"scheduled_date": later.date().isoformat(), "scheduled_time": "10:30", "time_zone": "UTC"},
        follow=True,
    )

    # Then it still waits for someone to approve it, and nothing is due to go out
    assert "Rescheduled and sent for approval again." in response.content.decode()
    post = the_post(alpha)
    assert post.status == PostStatus.PENDING_APPROVAL and post.scheduled_at.date() == later.date()
    with schema_context(alpha.schema_name):
        assert not DueJob.objects.filter(post_id=post.pk).exists()


def test_a_reviewer_who_changed_the_content_does_not_approve_it_after_someone_else_moves_it(
    alpha: Agency, account: TikTokAccount
) -> None:
    # Given an editor's waiting post whose caption a client reviewer (who may also draft) rewrote
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    with schema_context(alpha.schema_name):
        access_set(
            user=User.objects.get(email="client@alpha.example"),
            account=account,
            perms={Perm.DRAFT, Perm.APPROVE},
            by=None,
        )
    editor, media_id, post = editors_post(alpha, account)
    reviewer = signed_in(alpha, "client@alpha.example")
    reviewer.post(f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="The reviewer's words"))
    # When the editor then only moves it (so the editor changed it last)
    later = timezone.now() + dt.timedelta(days=3)
    editor.post(
        f"/posts/{post.pk}/reschedule/",
        {"scheduled_date": later.date().isoformat(), "scheduled_time": "09:00", "time_zone": "UTC"},
    )
    post = the_post(alpha)
    assert post.status == PostStatus.PENDING_APPROVAL and post.caption == "The reviewer's words"

    # Then the reviewer still may not approve words they wrote
    assert "Nothing is waiting for your approval." in reviewer.get("/posts/approvals/").content.decode()
    forged = reviewer.post(f"/posts/{post.pk}/approve/", {"seen": post.updated_at.isoformat()}, follow=True)
    assert "You wrote or changed this post" in forged.content.decode()
    assert the_post(alpha).status == PostStatus.PENDING_APPROVAL


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"caption": "Evening bake"}, "caption"),
        ({"privacy_level": "SELF_ONLY"}, "privacy"),
        ({"allow_comment": None, "allow_duet": "on"}, "toggles"),
        ({"commercial_disclosure": "on", "brand_organic": "on"}, "disclosure"),
        ({"mode": "inbox"}, "mode"),
        ({"media_id": "new"}, "video"),
    ],
)
def test_any_change_to_what_goes_to_tiktok_after_approval_clears_it(
    alpha: Agency, account: TikTokAccount, change: dict[str, str | None], what: str
) -> None:
    # Given an editor's post the client approved, with "Approved by" on its page
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    manager_user = member(alpha, "manager@alpha.example", Role.MANAGER, account)
    _, media_id, post = editors_post(alpha, account)
    approve(signed_in(alpha, "client@alpha.example"), post)
    approved = the_post(alpha)
    assert approved.status == PostStatus.SCHEDULED and len(approved.approved_content_hash) == 64
    manager = signed_in(alpha, "manager@alpha.example")
    assert "Approved by Client" in manager.get(f"/posts/{post.pk}/").content.decode()

    # When a manager, who may schedule without approval, changes what goes to TikTok
    if change.get("media_id") == "new":
        change = {"media_id": uploaded_id(manager, mp4_bytes(duration=9.0))}
    response = manager.post(f"/posts/{post.pk}/edit/", compose_data(account, media_id, **change), follow=True)
    assert response.status_code == 200

    # Then the post goes out as the manager scheduled it, but nobody reads it as approved
    post = the_post(alpha)
    assert post.status == PostStatus.SCHEDULED, what
    assert (post.review_outcome, post.reviewed_by, post.approved_content_hash) == ("", None, ""), what
    page = manager.get(f"/posts/{post.pk}/").content.decode()
    assert "Approved by" not in page, what
    with schema_context(alpha.schema_name):
        cleared = AuditLog.objects.get(action="post.approval_cleared")
        assert cleared.actor_id == manager_user.pk


def test_an_approval_stays_while_nothing_that_goes_to_tiktok_changes(
    alpha: Agency, account: TikTokAccount
) -> None:
    member(alpha, "editor@alpha.example", Role.EDITOR, account)
    member(alpha, "client@alpha.example", Role.CLIENT, account)
    member(alpha, "manager@alpha.example", Role.MANAGER, account)
    _, media_id, post = editors_post(alpha, account)
    approve(signed_in(alpha, "client@alpha.example"), post)
    manager = signed_in(alpha, "manager@alpha.example")

    # Saving the composer unchanged (same words, same video, same time) keeps the approval.
    same_time = the_post(alpha).scheduled_at.astimezone(dt.UTC)
    manager.post(
        f"/posts/{post.pk}/edit/",
        compose_data(
            account,
            media_id,
            scheduled_date=same_time.date().isoformat(),
            scheduled_time=same_time.strftime("%H:%M:%S"),
            time_zone="UTC",
        ),
    )

    post = the_post(alpha)
    assert (post.status, post.review_outcome) == (PostStatus.SCHEDULED, ReviewOutcome.APPROVED)
    assert "Approved by Client" in manager.get(f"/posts/{post.pk}/").content.decode()
