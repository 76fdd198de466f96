"""Comments on posts: the team's internal thread and the client thread on the post page, the
client thread on the review page (through a link or signed in as a client reviewer), @mentions
and the notifications comments cause. Real schema, real HTTP, email to a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.comments.mentions import find_handles, split_mentions
from apps.comments.models import BODY_MAX, Comment, Visibility
from apps.comments.services import comment_create, comment_delete
from apps.notifications.delivery import notification_email_deliver
from apps.notifications.models import Channel, Event, Kind, Notification, Preference
from apps.posts.models import Post, PostStatus
from apps.reviews.models import ClientLink, LinkKind
from apps.reviews.services import client_link_create, client_link_revoke
from tenants.models import Agency
from tenants.retention import agency_purge_expired
from tests.conftest import SMTPServer, client_for, mail_text
from tests.factories import PostFactory, TikTokAccountFactory
from tests.test_notifications import Team, signed_in, told

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
SECRET_NOTE = "Internal: client is late paying 7QZ"


def team_post(team: Team, caption: str = "Summer launch teaser") -> Post:
    return PostFactory(
        account=team.account,
        created_by=team.author,
        caption=caption,
        status=PostStatus.PENDING_APPROVAL,
        scheduled_at=timezone.now() + dt.timedelta(hours=5),
    )


def review_link(team: Team, *posts: Post) -> tuple[ClientLink, str]:
    return client_link_create(
        kind=LinkKind.REVIEW,
        client_label=posts[0].account.client_label,
        days=7,
        posts=posts,
        recipient="Carla",
        by=team.owner,
    )


def comments_url(post: Post) -> str:
    return f"/comments/posts/{post.pk}/"


def client_comment_url(token: str, post: Post) -> str:
    return f"/client/review/{token}/posts/{post.pk}/comments/"


# --- The post page ---


def test_the_team_comments_internally_and_to_the_client_and_a_client_reviewer_sees_only_theirs(
    alpha: Agency,
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
    author = signed_in(alpha, "author@alpha.example")

    # Given the author writes in both threads from the post page, through htmx
    answer = author.post(comments_url(post), {"visibility": "internal", "body": SECRET_NOTE}, **HTMX)
    assert answer.status_code == 200
    fragment = answer.content.decode()
    assert fragment.lstrip().startswith('<section class="comment-thread comment-thread-internal"')
    assert SECRET_NOTE in fragment and "Comment added." in fragment
    shared = author.post(comments_url(post), {"visibility": "client", "body": "New cut is up, thoughts?"})
    assert shared.status_code == 302 and shared["Location"].endswith(f"#comments-client-{post.pk}")

    # Then the post page shows both threads to the team
    page = author.get(f"/posts/{post.pk}/").content.decode()
    assert "Team comments" in page and SECRET_NOTE in page
    assert "Comments with the client" in page and "New cut is up, thoughts?" in page

    # But the client reviewer of the account, who may see the post, reads only the client thread
    client_reviewer = signed_in(alpha, "client@alpha.example")
    page = client_reviewer.get(f"/posts/{post.pk}/").content.decode()
    assert "New cut is up, thoughts?" in page
    assert SECRET_NOTE not in page and "comments-internal" not in page
    assert SECRET_NOTE not in client_reviewer.get(comments_url(post)).content.decode()
    # and cannot write to the internal thread either
    refused = client_reviewer.post(comments_url(post), {"visibility": "internal", "body": "Sneaky"})
    assert refused.status_code == 404
    with schema_context(alpha.schema_name):
        assert not Comment.objects.filter(body="Sneaky").exists()


def test_an_empty_or_too_long_comment_is_refused_saying_why_and_keeps_what_was_typed(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
    author = signed_in(alpha, "author@alpha.example")

    empty = author.post(comments_url(post), {"visibility": "internal", "body": "   "}, **HTMX)
    assert empty.status_code == 200
    assert "Write something before sending." in empty.content.decode()

    too_long = "Needs work. " + "x" * BODY_MAX
    answer = author.post(comments_url(post), {"visibility": "client", "body": too_long}, **HTMX)
    text = answer.content.decode()
    assert answer.status_code == 200
    assert f"Keep a comment to {BODY_MAX:,} characters ({len(too_long):,} now)." in text
    assert 'aria-invalid="true"' in text and f">{too_long}</textarea>" in text

    # Without JavaScript: the comments page, with the refusal and the text kept
    plain = author.post(comments_url(post), {"visibility": "client", "body": too_long})
    assert plain.status_code == 200
    assert (
        "Back to the post" in plain.content.decode() and f">{too_long}</textarea>" in plain.content.decode()
    )
    with schema_context(alpha.schema_name):
        assert not Comment.objects.exists()


def test_someone_who_may_not_see_the_post_gets_404_everywhere(alpha: Agency, beta: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        comment = comment_create(post=post, body=SECRET_NOTE, visibility=Visibility.INTERNAL, by=team.author)
    outsider = signed_in(alpha, "outsider@alpha.example")
    assert outsider.get(comments_url(post)).status_code == 404
    assert outsider.post(comments_url(post), {"visibility": "client", "body": "Hi"}).status_code == 404
    assert outsider.post(f"/comments/{comment.pk}/delete/").status_code == 404
    assert outsider.get(f"/posts/{post.pk}/").status_code == 404
    # Another agency's owner: the same 404, nothing of the comment
    other = signed_in(beta, "owner@shared.example")
    answer = other.get(comments_url(post))
    assert answer.status_code == 404 and SECRET_NOTE not in answer.content.decode()
    # Signed out: to the login page
    assert client_for(alpha).get(comments_url(post)).status_code == 302
    with schema_context(alpha.schema_name):
        assert Comment.objects.count() == 1


def test_only_the_author_or_an_admin_deletes_a_comment_and_it_is_kept_hidden_and_audited(
    alpha: Agency,
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        comment = comment_create(
            post=post, body="Swap the music", visibility=Visibility.INTERNAL, by=team.author
        )
    manager = signed_in(alpha, "manager@alpha.example")  # may see the post, did not write it
    page = manager.get(f"/posts/{post.pk}/").content.decode()
    assert "Swap the music" in page and f"/comments/{comment.pk}/delete/" not in page
    assert manager.post(f"/comments/{comment.pk}/delete/").status_code == 404

    author = signed_in(alpha, "author@alpha.example")
    assert f"/comments/{comment.pk}/delete/" in author.get(f"/posts/{post.pk}/").content.decode()
    answer = author.post(f"/comments/{comment.pk}/delete/", **HTMX)
    assert answer.status_code == 200 and "Comment deleted." in answer.content.decode()
    assert "Swap the music" not in author.get(f"/posts/{post.pk}/").content.decode()
    with schema_context(alpha.schema_name):
        assert Comment.all_objects.get(pk=comment.pk).deleted_by == team.author
        assert AuditLog.objects.filter(action="comment.deleted", actor=team.author).exists()


# --- The client review page ---


def test_a_client_comments_on_the_review_page_and_never_sees_internal_comments(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        comment_create(post=post, body=SECRET_NOTE, visibility=Visibility.INTERNAL, by=team.author)
        comment_create(post=post, body="Here is the new cut.", visibility=Visibility.CLIENT, by=team.author)
        _, token = review_link(team, post)
    browser = client_for(alpha)
    page = browser.get(f"/client/review/{token}/").content.decode()
    assert "Here is the new cut." in page and SECRET_NOTE not in page
    assert 'name="author_name"' in page

    # When the client sends a comment with their name
    sent = browser.post(
        client_comment_url(token, post), {"author_name": "Carla", "body": "Love it, brighter?"}
    )
    assert sent.status_code == 302
    assert sent["Location"] == f"/client/review/{token}/#comments-client-{post.pk}"
    assert sent["Cache-Control"] == "private, no-store"
    page = browser.get(sent["Location"]).content.decode()
    assert "Your comment was sent to the agency." in page
    assert "Love it, brighter?" in page and SECRET_NOTE not in page
    with schema_context(alpha.schema_name):
        comment = Comment.objects.get(body="Love it, brighter?")
        assert comment.visibility == Visibility.CLIENT and comment.author_name == "Carla"
        assert comment.client_label == team.account.client_label and comment.created_by is None
    # and the team reads it on the post page, marked as the client's
    author_page = signed_in(alpha, "author@alpha.example").get(f"/posts/{post.pk}/").content.decode()
    assert f"Carla ({team.account.client_label})" in author_page and "Love it, brighter?" in author_page

    # A refused comment (no name) says why and keeps the text
    refused = browser.post(client_comment_url(token, post), {"author_name": " ", "body": "Who am I"})
    assert refused.status_code == 200
    assert "Type your name" in refused.content.decode() and ">Who am I</textarea>" in refused.content.decode()


def test_the_review_page_reads_its_threads_in_two_queries_however_many_posts(alpha: Agency) -> None:
    def comment_queries(count: int) -> int:
        with schema_context(alpha.schema_name):
            team_posts = [team_post(team, f"Clip {n}") for n in range(count)]
            for post in team_posts:
                comment_create(
                    post=post, body="Thoughts? @manager", visibility=Visibility.CLIENT, by=team.author
                )
            _, token = review_link(team, *team_posts)
        with CaptureQueriesContext(connection) as captured:
            page = browser.get(f"/client/review/{token}/").content.decode()
        assert page.count("Thoughts? <mark") == count
        return sum('"comments_' in query["sql"] for query in captured.captured_queries)

    with schema_context(alpha.schema_name):
        team = Team()
    browser = client_for(alpha)
    assert comment_queries(1) == comment_queries(4) == 2  # the comments, their mentions


def test_a_signed_in_client_reviewer_comments_from_their_reviews_page(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        comment_create(post=post, body=SECRET_NOTE, visibility=Visibility.INTERNAL, by=team.author)
    reviewer = signed_in(alpha, "client@alpha.example")
    page = reviewer.get("/reviews/mine/").content.decode()
    assert f'id="comments-client-{post.pk}"' in page and SECRET_NOTE not in page
    sent = reviewer.post(comments_url(post), {"visibility": "client", "body": "Can we move it to Friday?"})
    assert sent.status_code == 302 and sent["Location"] == f"/reviews/mine/#post-{post.pk}"
    page = reviewer.get("/reviews/mine/").content.decode()
    assert "Can we move it to Friday?" in page and SECRET_NOTE not in page
    with schema_context(alpha.schema_name):
        # a client reviewer's comment tells the team, as a link's does
        assert told(Kind.CLIENT_COMMENT) == {
            "author@alpha.example",
            "manager@alpha.example",
            "owner@shared.example",
        }


def test_a_link_for_one_client_neither_reads_nor_writes_another_clients_comments(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        acme = TikTokAccountFactory(username="acme", client_label="Acme Drinks")
        bolt = TikTokAccountFactory(username="bolt", client_label="Bolt Bikes")
        acme_post = PostFactory(account=acme, created_by=team.owner, caption="Acme post")
        bolt_post = PostFactory(account=bolt, created_by=team.owner, caption="Bolt post")
        comment_create(post=bolt_post, body="Bolt prototype 9QX", visibility=Visibility.CLIENT, by=team.owner)
        _, acme_token = review_link(team, acme_post)
    browser = client_for(alpha)
    page = browser.get(f"/client/review/{acme_token}/").content.decode()
    assert "Acme post" in page and "Bolt prototype 9QX" not in page and str(bolt_post.pk) not in page
    answer = browser.post(client_comment_url(acme_token, bolt_post), {"author_name": "Eve", "body": "Hello"})
    assert answer.status_code == 404
    with schema_context(alpha.schema_name):
        assert not Comment.objects.filter(post=bolt_post, author_name="Eve").exists()


def test_a_revoked_or_expired_link_cannot_comment(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        link, token = review_link(team, post)
        expiring, expiring_token = review_link(team, post)
        client_link_revoke(link=link, by=team.owner)
        ClientLink.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    browser = client_for(alpha)
    for raw in (token, expiring_token):
        answer = browser.post(client_comment_url(raw, post), {"author_name": "Carla", "body": "Too late"})
        assert answer.status_code == 404
    with schema_context(alpha.schema_name):
        assert not Comment.objects.exists() and not Event.objects.exists()


def test_comments_are_escaped_everywhere_and_only_real_mentions_are_highlighted(alpha: Agency) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)> @manager'
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        comment_create(post=post, body=attack, visibility=Visibility.CLIENT, by=team.author)
        _, token = review_link(team, post)
    browser = client_for(alpha)
    sent = browser.post(
        client_comment_url(token, post), {"author_name": "<b>Carla</b>", "body": "<svg onload=alert(2)>"}
    )
    assert sent.status_code == 302
    for page in (
        browser.get(f"/client/review/{token}/").content.decode(),
        signed_in(alpha, "author@alpha.example").get(f"/posts/{post.pk}/").content.decode(),
    ):
        assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
        assert "&lt;svg onload=alert(2)&gt;" in page and "&lt;b&gt;Carla&lt;/b&gt;" in page
        assert '<mark class="mention">@manager</mark>' in page


# --- Mentions and notifications ---


def test_a_mention_tells_only_the_people_named_who_may_see_the_post(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
    author = signed_in(alpha, "author@alpha.example")
    body = "@manager please check. cc @outsider @client@alpha.example @nobody, @OWNER@shared.example."
    answer = author.post(comments_url(post), {"visibility": "internal", "body": body}, **HTMX)
    text = answer.content.decode()
    assert "Mentioned: Manager, owner@shared.example." in text
    assert '<mark class="mention">@manager</mark>' in text
    assert '<mark class="mention">@OWNER@shared.example</mark>' in text
    # The outsider (another account only) and the client reviewer are not highlighted: not mentioned
    assert '<mark class="mention">@outsider' not in text and '<mark class="mention">@client' not in text
    with schema_context(alpha.schema_name):
        assert told(Kind.COMMENT_MENTION) == {"manager@alpha.example", "owner@shared.example"}
        assert told(Kind.COMMENT_MENTION, Channel.EMAIL) == {"manager@alpha.example", "owner@shared.example"}
        event = Event.objects.get(kind=Kind.COMMENT_MENTION)
        assert event.title == "Author mentioned you on a post for @brandone: “Summer launch teaser”"
        assert event.path.startswith(f"/posts/{post.pk}/#comment-")
        assert not Event.objects.filter(kind=Kind.CLIENT_COMMENT).exists()  # the team wrote it
    # The manager reads it in the notification centre; the outsider has nothing
    assert (
        "Author mentioned you"
        in signed_in(alpha, "manager@alpha.example").get("/notifications/").content.decode()
    )
    assert (
        "Author mentioned you"
        not in signed_in(alpha, "outsider@alpha.example").get("/notifications/").content.decode()
    )


def test_a_client_comment_emails_the_post_team_as_their_preferences_say(
    alpha: Agency, smtp_server: SMTPServer
) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        _, token = review_link(team, post)
        # the manager wants client comments in the app only
        Preference.objects.create(
            user=team.manager, kind=Kind.CLIENT_COMMENT, channel=Channel.EMAIL, enabled=False
        )
    sent = client_for(alpha).post(
        client_comment_url(token, post), {"author_name": "Carla", "body": "Please use the blue logo."}
    )
    assert sent.status_code == 302
    with schema_context(alpha.schema_name):
        # The author and the approvers hear of it; not the client reviewer, not the outsider
        assert told(Kind.CLIENT_COMMENT) == {
            "author@alpha.example",
            "manager@alpha.example",
            "owner@shared.example",
        }
        assert told(Kind.CLIENT_COMMENT, Channel.EMAIL) == {"author@alpha.example", "owner@shared.example"}
        for person in (team.author, team.manager, team.owner, team.client, team.outsider):
            notification_email_deliver(user_id=person.pk)
    assert smtp_server.to("manager@alpha.example") == [] and smtp_server.to("client@alpha.example") == []
    assert smtp_server.to("outsider@alpha.example") == []
    (mail,) = smtp_server.to("author@alpha.example")
    label = team.account.client_label
    # (a long subject is folded in encoded words; some unfold with a doubled space)
    subject = " ".join(str(mail["Subject"]).split())
    assert subject == f"Carla ({label}) commented on a post for @brandone: “Summer launch teaser”"
    text = mail_text(mail)
    assert "Please use the blue logo." in text
    assert re.search(rf"http://alpha\.localhost:8000/posts/{post.pk}/#comment-[0-9a-f-]{{36}}", text)
    assert len(smtp_server.to("owner@shared.example")) == 1
    with schema_context(alpha.schema_name):
        assert (
            Notification.objects.filter(event__kind=Kind.CLIENT_COMMENT, recipient=team.client).count() == 0
        )


def test_mentions_are_found_as_written() -> None:
    assert find_handles("@ada, ask @Bob.Smith and ada@x.example; @ada again, @c@d.example.") == [
        "ada",
        "Bob.Smith",
        "c@d.example",
    ]
    pieces = split_mentions("hi @ada and @eve.", {"ada"})
    assert pieces == [("hi ", False), ("@ada", True), (" and @eve.", False)]
    assert "".join(text for text, _ in pieces) == "hi @ada and @eve."


def test_a_link_comments_at_most_so_often_and_a_name_stays_on_one_line(alpha: Agency, settings: Any) -> None:
    settings.THROTTLES = {**settings.THROTTLES, "client-comment": {"ip": 100, "address": 2, "window": 3600}}
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        _, token = review_link(team, post)
    browser = client_for(alpha)
    # A name with a line break (it goes into email subjects) is kept on one line
    first = browser.post(client_comment_url(token, post), {"author_name": "Carla\r\nBcc: x@y", "body": "One"})
    assert first.status_code == 302
    assert (
        browser.post(client_comment_url(token, post), {"author_name": "Carla", "body": "Two"}).status_code
        == 302
    )
    third = browser.post(client_comment_url(token, post), {"author_name": "Carla", "body": "Three"})
    assert third.status_code == 200
    assert "Too many comments through this link: at most 2 an hour." in third.content.decode()
    assert ">Three</textarea>" in third.content.decode()
    with schema_context(alpha.schema_name):
        assert list(Comment.objects.values_list("author_name", flat=True)) == ["Carla Bcc: x@y", "Carla"]
        assert "\n" not in Event.objects.filter(kind=Kind.CLIENT_COMMENT).first().title


def test_a_deleted_comment_is_removed_for_good_after_its_retention(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = team_post(team)
        old, recent = (
            comment_create(post=post, body=body, visibility=Visibility.INTERNAL, by=team.author)
            for body in ("Old", "Recent")
        )
        for comment in (old, recent):
            comment_delete(comment=comment, by=team.author)
        Comment.all_objects.filter(pk=old.pk).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    report = agency_purge_expired(agency=alpha)
    assert report.removed["comments.comment"] == 1
    with schema_context(alpha.schema_name):
        assert list(Comment.all_objects.values_list("body", flat=True)) == ["Recent"]


def test_the_database_refuses_a_comment_the_service_would(in_alpha: Agency) -> None:
    team = Team()
    post = team_post(team)
    link, _ = review_link(team, post)
    refused = [
        {"body": "   ", "visibility": Visibility.INTERNAL, "created_by": team.author},
        {"body": "x" * (BODY_MAX + 1), "visibility": Visibility.INTERNAL, "created_by": team.author},
        {"body": "Hi", "visibility": "public", "created_by": team.author},
        {"body": "Hi", "visibility": Visibility.INTERNAL, "link": link, "author_name": "Carla"},
        {"body": "Hi", "visibility": Visibility.CLIENT, "link": link, "author_name": ""},
        {
            "body": "Hi",
            "visibility": Visibility.CLIENT,
            "link": link,
            "author_name": "C",
            "created_by": team.author,
        },
    ]
    for values in refused:
        with pytest.raises(IntegrityError), transaction.atomic():
            Comment.objects.create(post=post, **values)
    assert not Comment.objects.exists()


def test_a_teammates_comment_tells_the_posts_author_once(in_alpha: Agency) -> None:
    team = Team()
    post = team_post(team)
    # The author's own comment tells nobody
    comment_create(post=post, body="Draft two is up", visibility=Visibility.INTERNAL, by=team.author)
    assert not Event.objects.exists()
    # The manager's comment tells the author, in the app and by email
    comment_create(post=post, body="Shorter intro?", visibility=Visibility.INTERNAL, by=team.manager)
    assert told(Kind.POST_COMMENT) == told(Kind.POST_COMMENT, Channel.EMAIL) == {"author@alpha.example"}
    event = Event.objects.get(kind=Kind.POST_COMMENT)
    assert event.title == "Manager commented on your post for @brandone: “Summer launch teaser”"
    assert event.body == "Shorter intro?"
    # Mentioned as well, the author hears of the mention only
    comment_create(post=post, body="@author see above", visibility=Visibility.CLIENT, by=team.manager)
    assert Event.objects.filter(kind=Kind.POST_COMMENT).count() == 1
    assert told(Kind.COMMENT_MENTION) == {"author@alpha.example"}
    # A client reviewer's comment is a client's comment, not a teammate's
    comment_create(post=post, body="Looks great", visibility=Visibility.CLIENT, by=team.client)
    assert Event.objects.filter(kind=Kind.POST_COMMENT).count() == 1
    assert Event.objects.filter(kind=Kind.CLIENT_COMMENT).count() == 1
