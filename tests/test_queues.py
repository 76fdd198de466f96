"""Posting queues: weekly slots in the account's zone, "Add to queue" in the composer, and
reordering the queue (by the Earlier / Later forms; the drag fills the same form)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.publishing.models import DueJob
from apps.queues.models import AccountQueue, QueueSlot
from apps.queues.services import queue_next_free, slot_instants
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory
from tests.test_composer import compose_data, connect, uploaded_id

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = dt.UTC


@pytest.fixture
def owner(alpha: Agency) -> Client:
    client = client_for(alpha)
    assert (
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )
    return client


def paris_queue(account: TikTokAccount, *instants: dt.datetime) -> None:
    """Weekly slots on the Paris weekday and time of each instant."""
    AccountQueue.objects.create(account=account, time_zone="Europe/Paris")
    for at in instants:
        local = at.astimezone(PARIS)
        QueueSlot.objects.create(account=account, weekday=local.weekday(), local_time=local.time())


def minute(delta: dt.timedelta) -> dt.datetime:
    return (timezone.now() + delta).replace(second=0, microsecond=0)


def test_a_slot_keeps_its_local_time_when_the_clocks_change(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        slot = QueueSlot.objects.create(account=account, weekday=1, local_time=dt.time(18))  # Tuesdays 18:00

        # The clocks go forward on Sunday 31 March 2030 and back on Sunday 27 October 2030.
        march = [
            at
            for at, _ in slot_instants(
                [slot],
                PARIS,
                after=dt.datetime(2030, 3, 20, tzinfo=UTC),
                until=dt.datetime(2030, 4, 5, tzinfo=UTC),
            )
        ]
        october = [
            at
            for at, _ in slot_instants(
                [slot],
                PARIS,
                after=dt.datetime(2030, 10, 16, tzinfo=UTC),
                until=dt.datetime(2030, 11, 1, tzinfo=UTC),
            )
        ]

        assert march == [dt.datetime(2030, 3, 26, 17, tzinfo=UTC), dt.datetime(2030, 4, 2, 16, tzinfo=UTC)]
        assert october == [
            dt.datetime(2030, 10, 22, 16, tzinfo=UTC),
            dt.datetime(2030, 10, 29, 17, tzinfo=UTC),
        ]
        assert {at.astimezone(PARIS).strftime("%A %H:%M") for at in march + october} == {"Tuesday 18:00"}

        # A post on the last slot before the change: the next free one is after it, still 18:00 in Paris.
        AccountQueue.objects.create(account=account, time_zone="Europe/Paris")
        PostFactory(account=account, scheduled_at=march[0])
        free = queue_next_free(account=account, after=dt.datetime(2030, 3, 20, tzinfo=UTC))
        assert free == march[1] and free is not None and free.astimezone(PARIS).hour == 18


def test_add_to_queue_takes_the_next_free_slot_never_a_past_or_taken_one(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    past, taken, free = (
        minute(-dt.timedelta(hours=1)),
        minute(dt.timedelta(hours=2)),
        minute(dt.timedelta(hours=3)),
    )
    with schema_context(alpha.schema_name):
        paris_queue(account, past, taken, free)
        PostFactory(account=account, scheduled_at=taken, caption="Already there")
        PostFactory(account=account, scheduled_at=free, status=PostStatus.CANCELLED, caption="Called off")

    first = owner.post(
        "/posts/new/", compose_data(account, uploaded_id(owner), action="queue", scheduled_date="")
    )
    second = owner.post(
        "/posts/new/", compose_data(account, uploaded_id(owner), action="queue", caption="Next")
    )

    assert first.status_code == 302 and second.status_code == 302, first.content.decode()[:2000]
    with schema_context(alpha.schema_name):
        queued = Post.objects.filter(created_by__email="owner@shared.example").order_by("created_at")
        # A cancelled post does not take its slot; the past slot comes back a week later, first.
        assert [p.scheduled_at for p in queued] == [free, past + dt.timedelta(weeks=1)]
        assert all(
            p.status == PostStatus.SCHEDULED and p.schedule_time_zone == "Europe/Paris" for p in queued
        )
        assert DueJob.objects.get(post_id=queued[0].pk).due_at == free
    assert "Added to the queue" in owner.get(first["Location"]).content.decode()


def test_add_to_queue_without_a_free_slot_saves_nothing_and_says_why(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)

    response = owner.post("/posts/new/", compose_data(account, uploaded_id(owner), action="queue"))

    assert response.status_code == 200
    assert f"{account} has no free slot in its posting queue" in response.content.decode()
    assert "Morning bake" in response.content.decode()  # what was typed is kept
    with schema_context(alpha.schema_name):
        assert not Post.objects.exists()


def test_reordering_swaps_posts_keeps_the_slots_and_refuses_a_claimed_post(
    alpha: Agency, owner: Client
) -> None:
    s1, s2, s3 = (minute(dt.timedelta(hours=h)) for h in (2, 3, 4))
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        paris_queue(account, s1, s2, s3)
        a = PostFactory(account=account, scheduled_at=s1, caption="First")
        b = PostFactory(account=account, scheduled_at=s2, caption="Second")
    url = f"/queues/{account.pk}/"
    page = owner.get(url).content.decode()
    assert page.count('class="queue-slot') >= 3 and "Free" in page
    assert f'name="to" value="{s2.astimezone(UTC).isoformat()}"' in page  # "Later" for the first post

    # Then the first post moves one slot later: the two posts swap, the taken slots stay the same.
    response = owner.post(f"{url}move/", {"post": str(a.pk), "to": s2.isoformat()}, follow=True)
    assert (
        "Moved “First” to" in response.content.decode()
        and "“Second” took its place" in response.content.decode()
    )
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=a.pk).scheduled_at == s2 and Post.objects.get(pk=b.pk).scheduled_at == s1
        assert DueJob.objects.get(post_id=b.pk).due_at == s1
        assert AuditLog.objects.filter(action="queue.reordered").count() == 1
        # A worker claims the second post (now on the first slot).
        Post.objects.filter(pk=b.pk).update(status=PostStatus.PUBLISHING)

    refused = owner.post(
        f"{url}move/", {"post": str(a.pk), "to": s1.isoformat()}, follow=True
    ).content.decode()

    assert "“First” was not moved" in refused and "is publishing" in refused
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=a.pk).scheduled_at == s2 and Post.objects.get(pk=b.pk).scheduled_at == s1
    # Into a free slot: a plain move.
    owner.post(f"{url}move/", {"post": str(a.pk), "to": s3.isoformat()})
    with schema_context(alpha.schema_name):
        assert Post.objects.get(pk=a.pk).scheduled_at == s3


def test_slots_are_kept_by_those_who_schedule_and_seen_by_those_who_may_see(
    alpha: Agency, owner: Client
) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        editor = User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        access_set(user=editor, account=account, perms={Perm.VIEW, Perm.DRAFT}, by=None)
    url = f"/queues/{account.pk}/"

    added = owner.post(f"{url}slots/", {"weekday": "1", "local_time": "18:00"}, follow=True).content.decode()
    twice = owner.post(f"{url}slots/", {"weekday": "1", "local_time": "18:00"}).content.decode()
    bad = owner.post(f"{url}slots/", {"weekday": "1", "local_time": "six"}).content.decode()
    owner.post(f"{url}time-zone/", {"time_zone": "America/New_York"})

    assert "Added a slot on Tuesday 18:00" in added
    assert "already has a slot on Tuesday 18:00" in twice and "Enter the time as HH:MM" in bad
    with schema_context(alpha.schema_name):
        assert QueueSlot.objects.filter(account=account).count() == 1
        assert AccountQueue.objects.get(account=account).time_zone == "America/New_York"
        assert set(AuditLog.objects.filter(action__startswith="queue.").values_list("action", flat=True)) == {
            "queue.slot_added",
            "queue.time_zone_changed",
        }
    editor_client = client_for(alpha)
    editor_client.post("/login/", {"username": "editor@alpha.example", "password": OWNER_PASSWORD})
    page = editor_client.get(url).content.decode()
    assert "Slots are read in America/New_York" in page and "Add slot" not in page
    assert editor_client.post(f"{url}slots/", {"weekday": "2", "local_time": "09:00"}).status_code == 404
