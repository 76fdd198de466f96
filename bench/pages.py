"""Page benchmark: every list page of an agency at realistic sizes, each against a trivial view.

    python -m bench.pages [--rounds 30]

One agency in a database of its own, seeded with 50 TikTok accounts, 100 members, 5,000 posts
(500 of them in this month, 200 waiting for approval), 100,000 audit entries and 50 accounts x 365
days of analytics snapshots; gunicorn with the production configuration (bench.web).

Each page is asked for in turn with the header's notification bell (`/notifications/bell/`, one
COUNT through the same middleware: host routing, session, sign-in, CSRF, CSP, the request log),
one request at a time on one connection, `--rounds` times each: the page's median time divided by
the bell's median over the same rounds is its ratio (target: at most 3). Deep pages are reached
through the pages' own "next" links (OFFSET pages by their number). Then the whole audit log is
exported as CSV: its time per row and how far the web workers' peak memory grew.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sys
import time
import uuid
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx

from bench.media import check
from bench.web import Server, bench_database, paired, production_server, sign_in

PASSWORD = f"bench-{uuid.uuid4().hex}"
OWNER = "owner@bench-pages.example"
EDITOR = "editor@bench-pages.example"  # a member with 10 of the 50 accounts
ZONE = "Europe/Paris"
ACCOUNTS = 50
MEMBERS = 100
POSTS = 5_000
POSTS_THIS_MONTH = 500
WAITING = 200
AUDIT_ENTRIES = 100_000
SNAPSHOT_DAYS = 365
TRIVIAL = "/notifications/bell/"
TARGET = 3.0


@dataclass(frozen=True)
class Seeded:
    host: str
    account_id: str  # one of the owner's accounts, for the filtered list and the analytics
    busy_day: dt.date  # the Monday of the week with most posts
    schema: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with bench_database("pages"):
        began = time.perf_counter()
        seeded = seed()
        print(f"Pages: one agency seeded in {time.perf_counter() - began:.0f} s", flush=True)
        # The whole log streams from the page here (above this it is a worker's job, timed after).
        os.environ["AUDIT_EXPORT_STREAM_ROWS"] = str(10 * AUDIT_ENTRIES)
        with production_server() as server:
            measure(args, server, seeded)
        export_job(seeded)
        return 0


# --- Seeding ---


def seed() -> Seeded:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import TikTokAccountUserObjectPermission
    from apps.accounts.permissions import ROLE_DEFAULTS, Perm
    from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostStatus, PublishAttempt
    from apps.users.models import Role, User
    from tenants.services import agency_create
    from tests.factories import PostFactory, TikTokAccountFactory

    rng = random.Random(20)
    agency = agency_create(
        slug="bench-pages", name="Bench Pages Agency", owner_email=OWNER, owner_password=PASSWORD
    )
    now = timezone.now()
    with schema_context(agency.schema_name):
        owner = User.objects.get(email=OWNER)
        owner.time_zone = ZONE
        owner.save(update_fields=["time_zone"])
        accounts = [
            TikTokAccountFactory(requires_approval=index % 4 == 0, follower_count=rng.randint(100, 900_000))
            for index in range(ACCOUNTS)
        ]
        # The team: the owner, an editor the benchmark signs in as, and members of every role.
        hashed = make_password(PASSWORD)
        roles = [Role.ADMIN, Role.MANAGER, Role.EDITOR, Role.EDITOR, Role.VIEWER, Role.CLIENT]
        people = [User(email=EDITOR, name="Eddie Editor", role=Role.EDITOR, password=hashed, time_zone=ZONE)]
        people += [
            User(
                email=f"member{index:03d}@bench-pages.example",
                name=f"Member {index:03d}",
                role=roles[index % len(roles)],
                password=hashed,
                time_zone=ZONE,
                last_login=now - dt.timedelta(hours=rng.uniform(1, 24 * 90)),
            )
            for index in range(MEMBERS - 2)
        ]
        people = User.objects.bulk_create(people)
        permissions = {
            p.codename: p for p in Permission.objects.filter(codename__in=[perm.value for perm in Perm])
        }
        grants = []
        for person in people:
            if person.role in (Role.OWNER, Role.ADMIN):
                continue
            for account in rng.sample(accounts, 10):
                grants += [
                    TikTokAccountUserObjectPermission(
                        user=person, permission=permissions[perm], content_object=account
                    )
                    for perm in ROLE_DEFAULTS[person.role]
                ]
        TikTokAccountUserObjectPermission.objects.bulk_create(grants)

        # Posts: 500 in this month (local time), the rest over the year around it; 200 waiting
        # for approval, written by members so the owner may approve them.
        local_now = now.astimezone(_zone())
        month_start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
        authors = [person for person in people if person.role in (Role.MANAGER, Role.EDITOR)]
        posts = []
        for index in range(POSTS):
            if index < POSTS_THIS_MONTH:
                when = month_start + (month_end - month_start) * rng.random()
            else:
                when = now + dt.timedelta(days=rng.uniform(-300, 65))
            if index % (POSTS // WAITING) == 0:
                status, when = PostStatus.PENDING_APPROVAL, max(when, now + dt.timedelta(hours=2))
            elif when < now:
                status = rng.choices(
                    [PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.CANCELLED], weights=[90, 6, 4]
                )[0]
            else:
                status = rng.choices([PostStatus.SCHEDULED, PostStatus.DRAFT], weights=[85, 15])[0]
            extra: dict[str, Any] = {}
            if status == PostStatus.PUBLISHED:
                extra = {"published_at": when, "publish_id": f"v_pub~{uuid.uuid4().hex}"}
            elif status == PostStatus.FAILED:
                extra = {"last_error_code": "spam_risk_too_many_posts", "last_error_message": "Too many."}
            posts.append(
                PostFactory.build(
                    account=rng.choice(accounts),
                    status=status,
                    scheduled_at=when,
                    created_by=rng.choice(authors),
                    # Many posts written in the same second: the lists' order must still be stable.
                    created_at=(when - dt.timedelta(days=3)).replace(second=0, microsecond=0),
                    **extra,
                )
            )
        Post.objects.bulk_create(posts, batch_size=1000)
        # What TikTok accepted: an init call for every published post (the daily-cap counts).
        PublishAttempt.objects.bulk_create(
            [
                PublishAttempt(
                    post=post,
                    attempt_number=1,
                    kind=AttemptKind.INIT,
                    outcome=AttemptOutcome.OK,
                    started_at=post.published_at,
                    finished_at=post.published_at,
                )
                for post in posts
                if post.status == PostStatus.PUBLISHED
            ],
            batch_size=1000,
        )
        _seed_audit(rng, people, accounts, posts)
        _seed_snapshots(rng, accounts, now.date())
        # The week view is timed on the busiest week of all, whatever the time of day the run
        # starts at (the posts waiting for approval gather a few hours from now).
        days = [p.scheduled_at.astimezone(_zone()).date() for p in posts]
        mondays = [day - dt.timedelta(days=day.weekday()) for day in days]
        busy_day = max(sorted(set(mondays)), key=mondays.count)  # weeks start on Monday
        with connection.cursor() as cursor:  # statistics, as autovacuum keeps them in production
            cursor.execute("ANALYZE")
    connection.set_schema_to_public()
    return Seeded(
        host=str(agency.primary_host),
        account_id=str(accounts[0].pk),
        busy_day=busy_day,
        schema=agency.schema_name,
    )


def _zone() -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(ZONE)


def _seed_audit(rng: random.Random, people: list[Any], accounts: list[Any], posts: list[Any]) -> None:
    from django.utils import timezone

    from apps.audit.models import AuditLog

    now = timezone.now()
    kinds = [
        ("post.edited", lambda: {"caption": {"old": "Before", "new": "After"}, "fields": ["caption"]}),
        ("post.scheduled", lambda: {"scheduled_at": {"old": None, "new": now.isoformat()}}),
        ("post.created", lambda: {}),
        ("login.succeeded", lambda: {}),
        ("access.changed", lambda: {"user": "a@x.example", "access": {"old": [], "new": ["draft_post"]}}),
    ]
    batch = []
    for index in range(AUDIT_ENTRIES):
        action, changes = kinds[index % len(kinds)]
        person = rng.choice(people)
        post = rng.choice(posts)
        batch.append(
            AuditLog(
                created_at=now - dt.timedelta(minutes=5 * index, seconds=rng.random()),
                actor=person,
                actor_email=person.email,
                action=action,
                object_type="posts.post" if action.startswith("post.") else "",
                object_id=str(post.pk) if action.startswith("post.") else "",
                object_repr=str(post) if action.startswith("post.") else "",
                account_id=post.account_id if action.startswith("post.") else rng.choice(accounts).pk,
                ip="203.0.113.7",
                user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Bench/1.0",
                changes=changes(),
            )
        )
        if len(batch) == 5000:
            AuditLog.objects.bulk_create(batch)
            batch = []
    AuditLog.objects.bulk_create(batch)


def _seed_snapshots(rng: random.Random, accounts: list[Any], today: dt.date) -> None:
    from apps.analytics.models import AccountSnapshot, VideoSnapshot

    snapshots, videos = [], []
    for account in accounts:
        followers = rng.randint(1000, 500_000)
        for back in range(SNAPSHOT_DAYS):
            day = today - dt.timedelta(days=SNAPSHOT_DAYS - 1 - back)
            growth = rng.randint(-50, 400)
            followers += growth
            snapshots.append(
                AccountSnapshot(
                    account=account,
                    date=day,
                    followers=followers,
                    likes=followers * 12,
                    videos=100 + back // 3,
                    views=followers * 40,
                    follower_growth=growth,
                    engagement_rate=rng.uniform(0.01, 0.09),
                )
            )
            if back >= SNAPSHOT_DAYS - 30:  # the last month's video lists, 20 videos a day
                videos += [
                    VideoSnapshot(
                        account=account,
                        video_id=f"{account.pk.hex[:8]}{number:04d}",
                        date=day,
                        title=f"Video {number}",
                        views=rng.randint(100, 2_000_000),
                        likes=rng.randint(10, 90_000),
                    )
                    for number in range(20)
                ]
    AccountSnapshot.objects.bulk_create(snapshots, batch_size=5000)
    VideoSnapshot.objects.bulk_create(videos, batch_size=5000)


# --- Measuring ---

_NEXT = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*rel="next"|<a\s[^>]*rel="next"[^>]*href="([^"]+)"')


def next_link(http: httpx.Client, path: str) -> str | None:
    """The page's own link to the next page (its rel="next" href), as an absolute path."""
    response = http.get(path)
    check(response.status_code == 200, f"{path} answered {response.status_code}")
    found = _NEXT.search(response.text)
    if found is None:
        return None
    href = unescape(found.group(1) or found.group(2))
    return href if href.startswith("/") else path.split("?", 1)[0] + href


def deep_link(http: httpx.Client, host: str, path: str, fraction: float, rows: int, per_page: int) -> str:
    """A page `fraction` of the way into the list, as its own "next" link would name it: an
    OFFSET page by its number; a cursor page (apps.common.pagination) by the position of the
    row before it, read from the list's own queryset and order."""
    link = next_link(http, path)
    if link is None:
        raise RuntimeError(f"{path} has no next page")
    if re.search(r"[?&]page=\d+", link):
        number = max(2, round(rows / per_page * fraction))
        return re.sub(r"([?&]page=)\d+", rf"\g<1>{number}", link)
    return re.sub(r"([?&]after=)[^&]+", rf"\g<1>{_cursor_at(host, path, round(rows * fraction))}", link)


def _cursor_at(host: str, path: str, offset: int) -> str:
    from django.db import connection
    from django_tenants.utils import schema_context

    from apps.common.pagination import cursor_encode
    from tenants.models import Domain

    lists = _cursor_lists()
    queryset, order = lists[path.split("?", 1)[0]]()
    with schema_context(Domain.objects.get(domain=host).tenant.schema_name):
        row = queryset.order_by(*order.order())[offset - 1]
        cursor = cursor_encode(order.position(row))
    connection.set_schema_to_public()
    return cursor


def _cursor_lists() -> dict[str, Any]:
    """Each cursor-paged list as its page reads it for the owner (who sees every row)."""
    from apps.audit.selectors import AUDIT_ORDER, AuditFilters, audit_entries
    from apps.posts.models import POST_LIST_ORDER, Post

    return {
        "/posts/": lambda: (Post.objects.for_list(), POST_LIST_ORDER),
        "/audit/": lambda: (audit_entries(AuditFilters()), AUDIT_ORDER),
    }


def measure(args: argparse.Namespace, server: Server, seeded: Seeded) -> int:
    owner = sign_in(server.port, seeded.host, OWNER, PASSWORD)
    editor = sign_in(server.port, seeded.host, EDITOR, PASSWORD)
    base = f"http://127.0.0.1:{server.port}"
    month = dt.datetime.now(tz=_zone()).date().isoformat()
    with httpx.Client(base_url=base, headers=owner, timeout=120) as http:
        deep_posts = deep_link(http, seeded.host, "/posts/", 0.75, POSTS, 25)
        deep_audit = deep_link(http, seeded.host, "/audit/", 0.75, AUDIT_ENTRIES, 50)
        pages: list[tuple[str, str, dict[str, str], bytes]] = [
            ("dashboard", "/", owner, b"Bench Pages Agency"),
            ("calendar: month, 500 posts", f"/calendar/?view=month&date={month}", owner, b"cal-month"),
            ("calendar: week", f"/calendar/?view=week&date={seeded.busy_day}", owner, b"cal-week"),
            ("posts: first page", "/posts/", owner, b"<tbody>"),
            ("posts: deep page", deep_posts, owner, b"<tbody>"),
            ("posts: one account", f"/posts/?account={seeded.account_id}", owner, b"<tbody>"),
            ("posts: an editor's (10 accounts)", "/posts/", editor, b"<tbody>"),
            ("approvals: 200 waiting", "/posts/approvals/", owner, b"review-list"),
            ("team: 100 members", "/team/", owner, b"Member 001"),
            ("accounts: 50", "/accounts/", owner, b"<tbody>"),
            ("audit log: first page", "/audit/", owner, b"audit-table"),
            ("audit log: deep page", deep_audit, owner, b"<tbody>"),
            ("audit log: one action", "/audit/?action=post.edited", owner, b"audit-table"),
            ("analytics: 90 days", f"/analytics/?account={seeded.account_id}&days=90", owner, b"<svg"),
        ]
    print(
        f"Pages: {ACCOUNTS} accounts, {MEMBERS} members, {POSTS} posts ({POSTS_THIS_MONTH} this month, "
        f"{WAITING} waiting for approval), {AUDIT_ENTRIES} audit entries, {ACCOUNTS} x {SNAPSHOT_DAYS} "
        f"days of snapshots; median of {args.rounds} requests each, against the trivial view "
        f"({TRIVIAL}) in turn with it",
        flush=True,
    )
    over = 0
    for name, path, headers, expect in pages:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            page, trivial, size = paired(http, path, TRIVIAL, args.rounds, expect)
        ratio = page.median / trivial.median
        over += ratio > TARGET
        print(
            f"  {name:<36} {page.median:7.1f} ms  trivial {trivial.median:5.1f} ms  "
            f"ratio {ratio:5.1f}x{'  (over 3x)' if ratio > TARGET else ''}  {size / 1000:6.0f} kB",
            flush=True,
        )
    export(server, base, owner)
    print(f"Pages: {len(pages) - over} of {len(pages)} within {TARGET:.0f}x the trivial view")
    return 0


def export(server: Server, base: str, headers: dict[str, str]) -> None:
    """The whole audit log as CSV, twice: time per row, and the workers' peak memory before and after."""
    before = server.workers_peak_rss()
    took, rows, size = [], 0, 0
    for _ in range(2):
        began = time.perf_counter()
        rows = size = 0
        with (
            httpx.Client(base_url=base, headers=headers, timeout=600) as http,
            http.stream("GET", "/audit/export.csv") as response,
        ):
            check(response.status_code == 200, f"export answered {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                rows += chunk.count(b"\n")
        took.append(time.perf_counter() - began)
    after = server.workers_peak_rss()
    best = min(took)
    print(
        f"  audit export: {rows - 1} rows, {size / 2**20:.1f} MiB in {best:.1f} s "
        f"({1e6 * best / max(1, rows - 1):.0f} us per row); web workers' peak memory "
        f"{before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    )


def export_job(seeded: Seeded) -> None:
    """The whole log as a worker's export job builds it (apps.audit.exports, what a log above
    AUDIT_EXPORT_STREAM_ROWS gets): time per row and the Python heap's peak while it writes."""
    import tracemalloc

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.audit.exports import audit_export_build
    from apps.audit.models import AuditExport

    with schema_context(seeded.schema):
        job = AuditExport.objects.create(up_to=timezone.now())
        tracemalloc.start()
        began = time.perf_counter()
        done = audit_export_build(str(job.pk))
        took = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if done is None or done.status != "ready":
        raise RuntimeError(f"benchmark run went wrong: the export job ended {done and done.status}")
    print(
        f"  audit export as a job: {done.rows_done} rows, {done.size_bytes / 2**20:.1f} MiB in {took:.1f} s "
        f"({1e6 * took / max(1, done.rows_done):.0f} us per row); heap peak {peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    sys.exit(main())
