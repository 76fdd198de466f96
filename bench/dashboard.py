"""Dashboard load benchmark: the production web server under 20 concurrent clients.

    python -m bench.dashboard [--clients 20] [--seconds 10] [--posts 600] [--accounts 12]

gunicorn with the production configuration (config/gunicorn.py, its default process and thread
counts, DEBUG off, collected static files, JSON logs, multiprocess metrics), in a database of its
own that it drops afterwards, with one agency of `--accounts` accounts and `--posts` posts in every
state. `--clients` signed-in clients, each on its own keep-alive connection, ask without pause for:

1. the header's notification bell (`/notifications/bell/`): a trivial view through the same stack
   (host routing to the agency, session, sign-in, CSRF, CSP, the request log), one COUNT;
2. the dashboard (`/`), as the owner (who sees every account);
3. the bell again: the baseline is the better of the two bell runs (the machine is shared).

Printed: requests/s, p50/p95/p99 latency and errors for each, and the dashboard's throughput as
a ratio of the bell's (and its p50 latency as a multiple of the bell's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bench.media import check
from bench.web import bench_database, load, production_server, sign_in

PASSWORD = f"bench-{uuid.uuid4().hex}"
OWNER = "owner@bench-dashboard.example"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--posts", type=int, default=600)
    parser.add_argument("--accounts", type=int, default=12)
    args = parser.parse_args()
    with bench_database("dashboard"):
        agency_host = seed(args)
        with production_server() as server:
            return measure(args, server.port, agency_host)


def seed(args: argparse.Namespace) -> str:
    """One agency: accounts, posts in every state, some notifications; returns its host."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.common.outbox import notification_emit
    from apps.posts.models import Post, PostStatus
    from apps.users.models import User
    from tenants.services import agency_create
    from tests.factories import PostFactory, TikTokAccountFactory

    agency = agency_create(slug="bench-dash", name="Bench Agency", owner_email=OWNER, owner_password=PASSWORD)
    now = timezone.now()
    rng = random.Random(19)
    # (status, share of the posts, when relative to now, in hours)
    mix: list[tuple[str, float, Callable[[], float]]] = [
        (PostStatus.SCHEDULED, 0.35, lambda: rng.uniform(1, 24 * 30)),
        (PostStatus.PUBLISHED, 0.30, lambda: -rng.uniform(1, 24 * 60)),
        (PostStatus.DRAFT, 0.12, lambda: rng.uniform(1, 24 * 10)),
        (PostStatus.PENDING_APPROVAL, 0.08, lambda: rng.uniform(1, 24 * 7)),
        (PostStatus.FAILED, 0.08, lambda: -rng.uniform(1, 24 * 6)),
        (PostStatus.NEEDS_ATTENTION, 0.03, lambda: -rng.uniform(1, 24 * 2)),
        (PostStatus.CANCELLED, 0.04, lambda: rng.uniform(1, 24 * 7)),
    ]
    with schema_context(agency.schema_name):
        accounts = [TikTokAccountFactory() for _ in range(args.accounts)]
        owner = User.objects.get(email=OWNER)
        for status, share, hours in mix:
            for _ in range(round(args.posts * share)):
                when = now + dt.timedelta(hours=hours())
                extra: dict[str, Any] = {}
                if status == PostStatus.PUBLISHED:
                    extra = {"published_at": when, "publish_id": f"v_pub~{uuid.uuid4().hex}"}
                elif status == PostStatus.FAILED:
                    extra = {"last_error_code": "spam_risk_too_many_posts"}
                PostFactory(
                    account=rng.choice(accounts), status=status, scheduled_at=when, created_by=owner, **extra
                )
        for post in Post.objects.filter(status__in=[PostStatus.FAILED, PostStatus.NEEDS_ATTENTION])[:40]:
            notification_emit(kind=f"post_{post.status}", obj=post, key=f"bench:{post.pk}", message="bench")
    connection.set_schema_to_public()
    return str(agency.primary_host)


def measure(args: argparse.Namespace, port: int, host: str) -> int:
    headers = sign_in(port, host, OWNER, PASSWORD)
    dashboard = httpx.get(f"http://127.0.0.1:{port}/", headers=headers, timeout=30)
    check(dashboard.status_code == 200 and b"Bench Agency" in dashboard.content, dashboard.status_code)
    bell = httpx.get(f"http://127.0.0.1:{port}/notifications/bell/", headers=headers, timeout=30)
    check(bell.status_code == 200, bell.status_code)
    workers = os.environ.get("WEB_CONCURRENCY", f"{2 * (os.cpu_count() or 1)}")
    threads = os.environ.get("GUNICORN_THREADS", "4")
    print(
        f"Dashboard load: gunicorn (config/gunicorn.py: {workers} processes x {threads} threads), "
        f"{args.clients} clients, {args.seconds:.0f} s each, {args.accounts} accounts, {args.posts} posts",
        flush=True,
    )
    common = (port, headers)
    runs = [
        load(*common, "/notifications/bell/", b"", args.clients, args.seconds, "trivial view (bell), before"),
        load(*common, "/", b"Bench Agency", args.clients, args.seconds, "dashboard"),
        load(*common, "/notifications/bell/", b"", args.clients, args.seconds, "trivial view (bell), after"),
    ]
    for run in runs:
        print(run.line())
    trivial = max(runs[0], runs[2], key=lambda run: run.rate)
    board = runs[1]
    print(
        f"  dashboard throughput ratio {board.rate / trivial.rate:.2f} of the trivial view's "
        f"(p50 latency x{board.pct(50) / trivial.pct(50):.1f}; baseline: the better bell run; "
        f"dashboard page {len(dashboard.content) / 1000:.0f} kB)"
    )
    return 1 if any(run.errors for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
