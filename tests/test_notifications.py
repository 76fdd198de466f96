"""Notifications: each event reaches exactly the people who may see its object, once per channel,
and the notification centre shows, counts, opens and marks them read for their owner only."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.accounts.posting_limits import BANNED, DAILY_CAP_REACHED, posting_limit_record
from apps.accounts.services import account_authorization_removed, account_mark_needs_reauth
from apps.common.outbox import notification_emit
from apps.notifications.models import Channel, Event, Kind, Notification, Preference
from apps.posts.models import Post, PostStatus
from apps.posts.services import post_approve, post_reject, post_schedule
from apps.publishing.jobs import job_set
from apps.publishing.models import DueJob, JobKind
from apps.publishing.services import post_publish
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db


class Team:
    """Alpha's people around one account: its author (editor), its manager, its client reviewer,
    an editor on another account only, and the owner (who holds everything)."""

    def __init__(self) -> None:
        self.owner = User.objects.get(email="owner@shared.example")
        self.account = TikTokAccountFactory(username="brandone")
        self.elsewhere = TikTokAccountFactory(username="brandtwo")
        self.author = self._member("author@alpha.example", Role.EDITOR, self.account)
        self.manager = self._member("manager@alpha.example", Role.MANAGER, self.account)
        self.client = self._member("client@alpha.example", Role.CLIENT, self.account)
        self.outsider = self._member("outsider@alpha.example", Role.EDITOR, self.elsewhere)

    @staticmethod
    def _member(email: str, role: str, account: TikTokAccount) -> User:
        user = User.objects.create_user(email, OWNER_PASSWORD, role=role, name=email.split("@")[0].title())
        access_set(user=user, account=account, perms=ROLE_DEFAULTS[role], by=None)
        return user


def told(kind: str, channel: str = Channel.IN_APP) -> set[str]:
    return set(
        Notification.objects.filter(event__kind=kind, channel=channel).values_list(
            "recipient__email", flat=True
        )
    )


def signed_in(agency: Agency, email: str) -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


# --- Who hears of what ---


def test_a_failed_post_tells_its_author_and_its_managers_only(in_alpha: Agency) -> None:
    team = Team()
    # Given a post claimed for publishing whose account lost its authorisation meanwhile
    team.account.status = AccountStatus.NEEDS_REAUTH
    team.account.save()
    post = PostFactory(
        account=team.account, status=PostStatus.PUBLISHING, created_by=team.author, publish_attempts=1
    )
    # (handed out by the dispatcher: its job is leased)
    job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_in=0)
    DueJob.objects.filter(post_id=post.pk).update(leased_until=timezone.now() + dt.timedelta(minutes=1))
    # When the worker takes it, it fails
    post_publish(post_id=str(post.pk))
    assert Post.objects.get(pk=post.pk).status == PostStatus.FAILED
    # Then its author, its manager and the owner hear of it, in the app and by email
    expected = {"author@alpha.example", "manager@alpha.example", "owner@shared.example"}
    assert told(Kind.POST_FAILED) == expected
    assert told(Kind.POST_FAILED, Channel.EMAIL) == expected
    # (the client reviewer manages nothing; the outsider cannot see the account)
    event = Event.objects.get(kind=Kind.POST_FAILED)
    assert event.path == f"/posts/{post.pk}/"
    assert "Reconnect" in event.body


def test_an_event_written_twice_is_one_notification_per_person_and_channel(in_alpha: Agency) -> None:
    team = Team()
    post = PostFactory(account=team.account, created_by=team.author)
    for _ in range(3):
        notification_emit(kind="post_needs_attention", obj=post, key=f"{post.pk}:1", message="Check TikTok.")
    assert Event.objects.count() == 1
    assert Notification.objects.filter(recipient=team.author, channel=Channel.IN_APP).count() == 1
    assert Notification.objects.filter(recipient=team.author).count() == 2  # in the app, by email


def test_a_teammate_without_the_account_hears_nothing_even_when_they_wrote_the_post(in_alpha: Agency) -> None:
    team = Team()
    post = PostFactory(account=team.account, created_by=team.outsider)  # written before losing access
    notification_emit(kind="post_failed", obj=post, key="x", message="TikTok refused it.")
    assert "outsider@alpha.example" not in told(Kind.POST_FAILED)
    assert told(Kind.POST_FAILED) == {"manager@alpha.example", "owner@shared.example"}


def test_approval_requests_go_to_reviewers_and_decisions_to_the_author(in_alpha: Agency) -> None:
    team = Team()
    team.account.requires_approval = True
    team.account.save()
    post = PostFactory(account=team.account, created_by=team.author, status=PostStatus.DRAFT)
    when = timezone.now() + dt.timedelta(hours=5)
    post = post_schedule(post=post, scheduled_at=when, time_zone="UTC", by=team.author)
    assert post.status == PostStatus.PENDING_APPROVAL
    # The account's reviewers: its manager, its client reviewer, the owner; never the author.
    assert told(Kind.APPROVAL_REQUESTED) == {
        "manager@alpha.example",
        "client@alpha.example",
        "owner@shared.example",
    }
    post_reject(post=post, comment="Use the new logo.", by=team.client)
    assert told(Kind.POST_REJECTED) == {"author@alpha.example"}
    assert Event.objects.get(kind=Kind.POST_REJECTED).body == "Use the new logo."
    post = post_schedule(
        post=Post.objects.get(pk=post.pk), scheduled_at=when, time_zone="UTC", by=team.author
    )
    assert Event.objects.filter(kind=Kind.APPROVAL_REQUESTED).count() == 2  # a new request
    post_approve(post=post, by=team.manager, seen=post.updated_at)
    assert told(Kind.POST_APPROVED) == {"author@alpha.example"}


def test_account_troubles_go_to_those_who_manage_the_connection(in_alpha: Agency) -> None:
    team = Team()
    account_mark_needs_reauth(account_id=team.account.pk, reason="TikTok refused the refresh token.")
    assert told(Kind.ACCOUNT_NEEDS_REAUTH) == {"manager@alpha.example", "owner@shared.example"}
    account_authorization_removed(open_id=team.account.open_id)
    assert told(Kind.ACCOUNT_REVOKED) == {"manager@alpha.example", "owner@shared.example"}
    assert Event.objects.get(kind=Kind.ACCOUNT_REVOKED).path == "/accounts/"


def test_published_is_off_by_default_and_a_person_may_turn_it_on(in_alpha: Agency) -> None:
    team = Team()
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_published", obj=post, key="1")
    assert told(Kind.POST_PUBLISHED) == set()
    Preference.objects.create(
        user=team.author, kind=Kind.POST_PUBLISHED, channel=Channel.IN_APP, enabled=True
    )
    notification_emit(kind="post_published", obj=post, key="2")
    assert told(Kind.POST_PUBLISHED) == {"author@alpha.example"}
    assert told(Kind.POST_PUBLISHED, Channel.EMAIL) == set()


def test_agency_defaults_apply_until_a_person_chooses(in_alpha: Agency) -> None:
    team = Team()
    Preference.objects.create(user=None, kind=Kind.POST_FAILED, channel=Channel.EMAIL, enabled=False)
    Preference.objects.create(user=team.author, kind=Kind.POST_FAILED, channel=Channel.EMAIL, enabled=True)
    post = PostFactory(account=team.account, created_by=team.author)
    notification_emit(kind="post_failed", obj=post, key="1", message="No.")
    assert told(Kind.POST_FAILED, Channel.EMAIL) == {"author@alpha.example"}
    assert len(told(Kind.POST_FAILED)) == 3


# --- The centre ---


def test_the_bell_counts_and_the_centre_opens_the_post(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = PostFactory(account=team.account, created_by=team.author, caption="Spring teaser")
        author = signed_in(alpha, "author@alpha.example")
        assert "bell-count" not in author.get("/notifications/bell/").content.decode()
        notification_emit(kind="post_failed", obj=post, key="1", message="TikTok said no.")
        notification_emit(kind="post_needs_attention", obj=post, key="2", message="Check TikTok.")
    bell = author.get("/notifications/bell/").content.decode()
    assert re.search(r'class="bell-count"[^>]*>2<', bell)
    page = author.get("/notifications/").content.decode()
    assert "A post for @brandone failed: “Spring teaser”" in page and "TikTok said no." in page
    with schema_context(alpha.schema_name):
        first = Notification.objects.get(
            recipient__email="author@alpha.example", channel="in_app", event__key__endswith=":1"
        )
    opened = author.post(f"/notifications/{first.pk}/open/")
    assert opened.status_code == 302 and opened["Location"] == f"/posts/{post.pk}/"
    assert re.search(r'class="bell-count"[^>]*>1<', author.get("/notifications/bell/").content.decode())
    author.post("/notifications/read-all/")
    assert "bell-count" not in author.get("/notifications/bell/").content.decode()


def test_nobody_opens_or_reads_another_persons_notification(alpha: Agency, beta: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = PostFactory(account=team.account, created_by=team.author, caption="Secret teaser")
        notification_emit(kind="post_failed", obj=post, key="1", message="No.")
        theirs = Notification.objects.get(recipient=team.author, channel="in_app")
    manager = signed_in(alpha, "manager@alpha.example")
    assert manager.post(f"/notifications/{theirs.pk}/open/").status_code == 404
    other_agency = signed_in(beta, "owner@shared.example")
    assert other_agency.post(f"/notifications/{theirs.pk}/open/").status_code == 404
    assert "Secret teaser" not in other_agency.get("/notifications/").content.decode()
    with schema_context(alpha.schema_name):
        assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_losing_access_hides_the_notifications_about_the_account(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = PostFactory(account=team.account, created_by=team.author, caption="Soon hidden")
        notification_emit(kind="post_failed", obj=post, key="1", message="No.")
        mine = Notification.objects.get(recipient=team.manager, channel="in_app")
        access_set(user=team.manager, account=team.account, perms=(), by=None)
    manager = signed_in(alpha, "manager@alpha.example")
    assert "Soon hidden" not in manager.get("/notifications/").content.decode()
    assert manager.post(f"/notifications/{mine.pk}/open/").status_code == 404


def test_the_centre_and_bell_need_a_sign_in_and_change_state_only_on_post(alpha: Agency) -> None:
    anonymous = client_for(alpha)
    assert anonymous.get("/notifications/")["Location"].startswith("/login/")
    owner = signed_in(alpha, "owner@shared.example")
    assert owner.get("/notifications/read-all/").status_code == 405
    assert 'hx-get="/notifications/bell/"' in owner.get("/notifications/").content.decode()


def test_a_posting_limit_tells_those_who_post_for_the_account(in_alpha: Agency) -> None:
    team = Team()
    viewer = Team._member("viewer@alpha.example", Role.VIEWER, team.account)
    assert posting_limit_record(account=team.account, code=DAILY_CAP_REACHED)
    expected = {"author@alpha.example", "manager@alpha.example", "owner@shared.example"}
    assert told(Kind.ACCOUNT_DAILY_CAP) == expected  # not the viewer nor the client reviewer
    assert viewer.email not in told(Kind.ACCOUNT_DAILY_CAP)
    assert "daily posting limit" in Event.objects.get(kind=Kind.ACCOUNT_DAILY_CAP).body
    # The same refusal again is not news
    assert posting_limit_record(account=team.account, code=DAILY_CAP_REACHED)
    assert Event.objects.filter(kind=Kind.ACCOUNT_DAILY_CAP).count() == 1
    assert posting_limit_record(account=team.account, code=BANNED)
    assert told(Kind.ACCOUNT_BANNED) == expected


def test_the_centre_costs_the_same_queries_for_few_or_many(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        team = Team()
        post = PostFactory(account=team.account, created_by=team.author)
    author = signed_in(alpha, "author@alpha.example")
    counts = []
    for total in (2, 12):
        with schema_context(alpha.schema_name):
            for n in range(
                total - Notification.objects.filter(recipient=team.author, channel="in_app").count()
            ):
                notification_emit(kind="post_failed", obj=post, key=f"{total}:{n}", message="No.")
        with CaptureQueriesContext(connection) as queries:
            assert author.get("/notifications/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
