"""API benchmark: the posts list with 5,000 posts against a trivial API view, as ratios.

    python -m bench.api [--rounds 30]

One agency in a database of its own with 20 TikTok accounts and 5,000 posts (drafts, scheduled,
failed, cancelled); an
admin API key; gunicorn with the production configuration (bench.web), the key's rate limit
raised out of the way. Each list request is asked for in turn with `GET /api/v1/accounts/{id}`
(one row through the same stack: host routing, the key's check and last use, the rate limit, the
permission gate, JSON), one request at a time on one connection, `--rounds` times each: the list's
median time over the trivial view's median is its ratio. The deep page is reached by following
`next_cursor` three quarters of the way through.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from typing import Any

import httpx

from bench.media import check
from bench.web import bench_database, paired, production_server

POSTS = 5_000
ACCOUNTS = 20
LIMIT = 50
OWNER = "owner@bench-api.example"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    os.environ["API_RATE_LIMIT"] = "1000000/60"  # the benchmark measures work, not the limiter
    with bench_database("api"):
        began = time.perf_counter()
        host, key, account_id = seed()
        print(f"API: one agency seeded in {time.perf_counter() - began:.0f} s", flush=True)
        with production_server() as server:
            return measure(args, server.port, host, key, account_id)


def seed() -> tuple[str, str, str]:
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.api.keys import api_key_create
    from apps.posts.models import Post, PostStatus
    from apps.users.models import User
    from tenants.services import agency_create
    from tests.factories import TikTokAccountFactory

    rng = random.Random(17)
    agency = agency_create(
        slug="bench-api", name="Bench API Agency", owner_email=OWNER, owner_password=f"pw-{uuid.uuid4().hex}"
    )
    now = timezone.now()
    with schema_context(agency.schema_name):
        owner = User.objects.get(email=OWNER)
        accounts: list[Any] = [TikTokAccountFactory() for _ in range(ACCOUNTS)]
        statuses = [PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.FAILED, PostStatus.CANCELLED]
        Post.objects.bulk_create(
            [
                Post(
                    account=rng.choice(accounts),
                    caption=f"Bench post {index}",
                    status=rng.choice(statuses),
                    privacy_level="PUBLIC_TO_EVERYONE",
                    scheduled_at=now + dt.timedelta(minutes=index),
                    schedule_time_zone="UTC",
                    created_at=now - dt.timedelta(minutes=index),
                    created_by=owner,
                )
                for index in range(POSTS)
            ],
            batch_size=1000,
        )
        _, secret = api_key_create(name="Bench", role="admin", expires_at=None, by=owner)
        account_id = str(accounts[0].pk)
    return agency.primary_host, secret, account_id


def measure(args: argparse.Namespace, port: int, host: str, key: str, account_id: str) -> int:
    headers = {"Host": host, "X-Forwarded-Proto": "https", "Authorization": f"Bearer {key}"}
    trivial = f"/api/v1/accounts/{account_id}"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as http:
        first = http.get(f"/api/v1/posts?limit={LIMIT}")
        check(first.status_code == 200, first.text[:500])
        deep: Any = first.json()
        for _ in range(int(POSTS / LIMIT * 0.75)):
            deep = http.get("/api/v1/posts", params={"limit": LIMIT, "cursor": deep["next_cursor"]}).json()
        check(deep.get("next_cursor"), "the deep page is the last one")
        deep_path = f"/api/v1/posts?limit={LIMIT}&cursor={deep['next_cursor']}"
        lists = [
            ("posts: first page", f"/api/v1/posts?limit={LIMIT}"),
            ("posts: 3/4 of the way in", deep_path),
            ("posts: one account", f"/api/v1/posts?limit={LIMIT}&account_id={account_id}"),
            ("posts: one status", f"/api/v1/posts?limit={LIMIT}&status=failed"),
        ]
        print(
            f"API: {POSTS} posts over {ACCOUNTS} accounts, pages of {LIMIT}; median of {args.rounds} "
            f"requests each, in turn with the trivial view ({trivial.replace(account_id, '{id}')})",
            flush=True,
        )
        for name, path in lists:
            page, base, size = paired(http, path, trivial, args.rounds, b'"items"')
            print(
                f"  {name:<28} {page.median:7.1f} ms  trivial {base.median:5.1f} ms  "
                f"ratio {page.median / base.median:5.2f}x  {size / 1000:5.0f} kB",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
