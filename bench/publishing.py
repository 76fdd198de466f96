"""Publishing benchmark, in a database of its own that it drops afterwards.

    python -m bench.publishing [--agencies 100] [--tick-agencies 1000]

1. Dispatcher tick time with 10 agencies and with `--tick-agencies` agencies, one due post
   in each case (median of 15 ticks), and their ratio.
2. 1,000 posts due at the same moment across 100 agencies (5 accounts each, 2 posts per
   account), published against the fake TikTok by two worker processes and the scheduler:
   lateness from due time to init (p50, p99, max) and throughput.
3. The throughput of a no-op Dramatiq actor on the same two worker processes, and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
GOOD_CREATORS = {
    "fake-open-public-001": "PUBLIC_TO_EVERYONE",
    "fake-open-private-002": "FOLLOWER_OF_CREATOR",
    "fake-open-nocomment-003": "MUTUAL_FOLLOW_FRIENDS",
    "fake-open-nearcap-004": "SELF_ONLY",
    "fake-open-studio-006": "PUBLIC_TO_EVERYONE",
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=100)
    parser.add_argument("--tick-agencies", type=int, default=1000)
    args = parser.parse_args()

    # A database and a broker namespace of the benchmark's own.
    import dj_database_url

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postline")
    config = dj_database_url.parse(base_url)
    bench_db = f"postline_bench_{os.getpid()}"
    admin = psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + f"/{bench_db}"
    os.environ["DRAMATIQ_NAMESPACE"] = f"postline-bench-{uuid.uuid4().hex[:6]}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["PUBLISH_POLL_BACKOFF"] = "1,1,1,2,2,3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="postline-bench-media-")
    import django

    django.setup()
    from django.conf import settings

    # Owners' passwords are not what is measured.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        return run(args, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def run(args: argparse.Namespace, processes: list[subprocess.Popen[bytes]]) -> int:
    import dramatiq
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import TikTokAccount
    from apps.fake_tiktok.server import FakeTikTok
    from apps.posts.models import AttemptKind, Post, PostMedia, PostStatus, PublishAttempt
    from apps.posts.services import post_schedule
    from apps.publishing.dispatcher import dispatch_due
    from apps.publishing.tasks import publishing_noop
    from apps.tiktok.ratelimit import redis_client
    from tenants.services import agency_create

    call_command("migrate_all", verbosity=0)

    def make_agencies(count: int, start: int) -> list[Any]:
        def one(i: int) -> Any:
            agency = agency_create(
                slug=f"bench-{i:04d}",
                name=f"Bench {i}",
                owner_email=f"owner{i}@bench.example",
                owner_password=f"bench-{uuid.uuid4().hex}",
            )
            connection.close()
            return agency

        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(one, range(start, start + count)))

    def draft(agency: Any) -> Post:
        with schema_context(agency.schema_name):
            account, _ = TikTokAccount.objects.get_or_create(
                open_id="fake-open-public-001", defaults={"username": "luna.bakes"}
            )
            return Post.objects.create(account=account, caption="tick", privacy_level="PUBLIC_TO_EVERYONE")

    def tick_time(agencies: list[Any]) -> float:
        times = []
        for rep in range(15):
            agency = agencies[rep % len(agencies)]
            post = draft(agency)
            with schema_context(agency.schema_name):
                post_schedule(post=post, scheduled_at=timezone.now(), time_zone="UTC", by=None)
            connection.set_schema_to_public()
            start = time.perf_counter()
            dispatched = dispatch_due()
            times.append(time.perf_counter() - start)
            if len(dispatched) != 1:
                raise RuntimeError(f"expected one dispatched post, got {dispatched}")
        return statistics.median(times)

    print(f"Creating {args.tick_agencies} agencies (cloned schemas)...", flush=True)
    started = time.perf_counter()
    agencies = make_agencies(10, 0)
    small_tick = tick_time(agencies)
    agencies += make_agencies(args.tick_agencies - 10, 10)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    large_tick = tick_time(agencies)
    # The tick posts were handed to a broker with no worker yet: clear them before the next part.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM publishing_duejob")
    redis_client().delete(*(redis_client().keys(f"{settings.DRAMATIQ_NAMESPACE}:*") or [b"none"]))

    # --- 1,000 posts due at once ---
    fake = FakeTikTok(
        client_key=settings.TIKTOK_CLIENT_KEY,
        client_secret=settings.TIKTOK_CLIENT_SECRET,
        processing_seconds=1.0,
        publicly_available_seconds=2.0,
        daily_post_cap=100_000,
    ).start()
    env = {**os.environ, "TIKTOK_API_BASE_URL": fake.base_url, "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    publishing = agencies[: args.agencies]
    video = b"\0" * 200_000
    due = timezone.now() + dt.timedelta(seconds=30 + args.agencies * 0.15)
    print(f"Preparing {args.agencies * 10} posts...", flush=True)
    for agency in publishing:
        with schema_context(agency.schema_name):
            for open_id, privacy in GOOD_CREATORS.items():
                tokens = fake.issue_tokens(open_id)
                account, _ = TikTokAccount.objects.update_or_create(
                    open_id=open_id,
                    defaults={
                        "access_token": tokens["access_token"],
                        "refresh_token": tokens["refresh_token"],
                        "access_expires_at": timezone.now() + dt.timedelta(hours=2),
                    },
                )
                for n in range(2):
                    post = Post.objects.create(account=account, caption=f"bench {n}", privacy_level=privacy)
                    media = PostMedia(
                        post=post,
                        size_bytes=len(video),
                        mime_type="video/mp4",
                        sha256="0" * 64,
                        duration_seconds=5,
                    )
                    media.file.save("clip.mp4", ContentFile(video), save=True)
                    post_schedule(post=post, scheduled_at=due, time_zone="UTC", by=None)
    connection.set_schema_to_public()
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "config.worker", "--processes", "2", "--threads", "8"],
            env=env,
            cwd=ROOT,
        )
    )
    processes.append(
        subprocess.Popen(
            [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"], env=env, cwd=ROOT
        )
    )
    total = args.agencies * 10
    print(f"Waiting for {total} posts due at {due:%H:%M:%S}...", flush=True)

    def count(status: list[str]) -> int:
        n = 0
        for agency in publishing:
            with schema_context(agency.schema_name):
                n += Post.objects.filter(status__in=status).count()
        connection.set_schema_to_public()
        return n

    while (
        count([PostStatus.PROCESSING, PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION])
        < total
    ):
        time.sleep(1)
    uploaded_at = timezone.now()
    while count([PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION]) < total:
        time.sleep(1)
    done_at = timezone.now()
    lateness, failed = [], 0
    for agency in publishing:
        with schema_context(agency.schema_name):
            failed += Post.objects.exclude(status=PostStatus.PUBLISHED).count()
            for started_at in PublishAttempt.objects.filter(kind=AttemptKind.INIT).values_list(
                "started_at", flat=True
            ):
                lateness.append((started_at - due).total_seconds())
    connection.set_schema_to_public()
    all_uploaded = (uploaded_at - due).total_seconds()
    publish_rate = total / all_uploaded

    # --- A no-op actor on the same workers ---
    broker: Any = dramatiq.get_broker()
    counter = f"{settings.DRAMATIQ_NAMESPACE}:noop-count"
    noops = 5000
    start = time.perf_counter()
    for _ in range(noops):
        publishing_noop.send(counter)
    while int(broker.client.get(counter) or 0) < noops:
        time.sleep(0.05)
    noop_rate = noops / (time.perf_counter() - start)
    fake.stop()

    print()
    print(
        f"Dispatcher tick, one due post (median of 15): {small_tick * 1000:.1f} ms with 10 agencies, "
        f"{large_tick * 1000:.1f} ms with {len(agencies)} agencies; ratio {large_tick / small_tick:.2f}"
    )
    print(f"{total} posts due at once, {len(publishing)} agencies, 2 worker processes x 8 threads:")
    print(
        f"  due → init lateness: p50 {percentile(lateness, 50):.1f} s, p99 {percentile(lateness, 99):.1f} s, "
        f"max {max(lateness):.1f} s"
    )
    print(
        f"  all uploaded {all_uploaded:.1f} s after due ({publish_rate:.1f} posts/s); all final "
        f"{(done_at - due).total_seconds():.1f} s after due; not published: {failed}"
    )
    print(
        f"  no-op actor on the same workers: {noop_rate:.0f} messages/s; publish / no-op: "
        f"{publish_rate / noop_rate:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
