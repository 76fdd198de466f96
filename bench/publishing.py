"""Publishing benchmark, in a database of its own that it drops afterwards.

    python -m bench.publishing [--agencies 100] [--tick-agencies 1000]

1. Dispatcher tick time with 10 agencies and with `--tick-agencies` agencies, one due post
   in each case (median of 51 ticks), and their ratio; the time of a schema clone with 10
   agencies and with all of them.
2. 1,000 posts due at the same moment across 100 agencies (5 accounts each, 2 posts per
   account), published against the fake TikTok (`run_fake_tiktok`, a process of its own) by
   two worker processes and the scheduler: lateness from due time to init (p50, p99, max),
   where the time went per phase, throughput, and how every post ended (status, error code).
3. The throughput of a no-op Dramatiq actor on the same two worker processes, and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
# Five creators that can post (not the banned one). Each is used by every agency, and the fake
# counts a creator's posts across all of them, so the fake's daily cap is lifted below: the
# benchmark measures our throughput, not TikTok's cap (which would fail @daily.drills first).
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


TICKS = 51
PHASES = (
    "due -> claimed by the dispatcher",
    "claimed -> creator_info sent",
    "creator_info call",
    "creator_info done -> init sent",
    "init call",
    "init done -> upload sent",
    "upload (all chunks)",
)


def add_phases(
    phases: dict[str, list[float]], due: dt.datetime, claimed_at: Any, attempts: dict[str, list[Any]]
) -> None:
    """One post's timeline, from the first attempt of each kind (retries are rare here)."""
    if claimed_at is None or not attempts.get("creator_info") or not attempts.get("init"):
        return
    info_start, info_end = attempts["creator_info"][0]
    init_start, init_end = attempts["init"][0]
    marks = [due, claimed_at, info_start, info_end, init_start, init_end]
    uploads = attempts.get("upload") or []
    if uploads and init_end is not None:
        marks += [min(u[0] for u in uploads), max(u[1] or u[0] for u in uploads)]
    for name, (a, b) in zip(PHASES, itertools.pairwise(marks), strict=False):
        if a is not None and b is not None:
            phases[name].append((b - a).total_seconds())


def start_fake_tiktok(processes: list[subprocess.Popen[bytes]]) -> httpx.Client:
    """Start `manage.py run_fake_tiktok` on a free port; a client for its control API."""
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_fake_tiktok",
            "--port",
            "0",
            "--processing-seconds",
            "1",
            "--publicly-available-seconds",
            "2",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
    )
    processes.append(process)
    for line in process.stdout or ():
        if b"serving at " in line:
            base_url = line.decode().split("serving at ", 1)[1].strip()
            break
    else:
        raise RuntimeError("The fake TikTok did not start.")
    # Drain the rest of its output so it never blocks on a full pipe.
    threading.Thread(target=(process.stdout or io.BytesIO()).read, daemon=True).start()
    client = httpx.Client(base_url=base_url, timeout=10)
    client.post("/_fake/config", json={"daily_post_cap": 1_000_000}).raise_for_status()
    return client


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
        # And the broker namespace: queues, heartbeats, counters, the scheduler's period keys.
        from apps.tiktok.ratelimit import redis_client

        namespace, redis = os.environ["DRAMATIQ_NAMESPACE"], redis_client()
        for pattern in (f"{namespace}:*", f"postline:{namespace}:*"):
            for key in redis.scan_iter(pattern, count=1000):
                redis.delete(key)


def run(args: argparse.Namespace, processes: list[subprocess.Popen[bytes]]) -> int:
    import dramatiq
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import TikTokAccount
    from apps.posts.models import AttemptKind, Post, PostMedia, PostStatus, PublishAttempt
    from apps.posts.services import post_schedule
    from apps.publishing.dispatcher import dispatch_due
    from apps.publishing.tasks import publishing_noop
    from apps.tiktok.ratelimit import redis_client
    from tenants import provisioning
    from tenants.services import agency_create

    call_command("migrate_all", verbosity=0)

    creation_times: list[float] = []

    def make_agencies(count: int, start: int) -> list[Any]:
        def one(i: int) -> Any:
            began = time.perf_counter()
            agency = agency_create(
                slug=f"bench-{i:04d}",
                name=f"Bench {i}",
                owner_email=f"owner{i}@bench.example",
                owner_password=f"bench-{uuid.uuid4().hex}",
            )
            creation_times.append(time.perf_counter() - began)
            connection.close()
            return agency

        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(one, range(start, start + count)))

    def clone_time() -> float:
        """Median time of a bare schema clone (rolled back) with the catalog as it is now."""
        times = []
        for _ in range(5):
            with transaction.atomic():
                began = time.perf_counter()
                provisioning.schema_clone("bench_clone_probe")
                times.append(time.perf_counter() - began)
                transaction.set_rollback(True)
        return statistics.median(times)

    def draft(agency: Any) -> Post:
        with schema_context(agency.schema_name):
            account, _ = TikTokAccount.objects.get_or_create(
                open_id="fake-open-public-001", defaults={"username": "luna.bakes"}
            )
            return Post.objects.create(account=account, caption="tick", privacy_level="PUBLIC_TO_EVERYONE")

    def tick_time(agencies: list[Any]) -> float:
        times = []
        for rep in range(TICKS):
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
    early_clone, early_create = clone_time(), statistics.median(creation_times)
    small_tick = tick_time(agencies)
    agencies += make_agencies(args.tick_agencies - 10, 10)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    late_clone, late_create = clone_time(), statistics.median(creation_times[-100:])
    last = min(100, len(creation_times))
    large_tick = tick_time(agencies)
    # The tick posts were handed to a broker with no worker yet: remove them before the next part.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM publishing_duejob")
    for agency in agencies[:TICKS]:
        with schema_context(agency.schema_name):
            Post.all_objects.filter(caption="tick").delete()
    connection.set_schema_to_public()
    redis_client().delete(*(redis_client().keys(f"{settings.DRAMATIQ_NAMESPACE}:*") or [b"none"]))

    # --- 1,000 posts due at once ---
    # The fake TikTok in a process of its own, as TikTok is: it must not share our GIL.
    fake = start_fake_tiktok(processes)
    env = {
        **os.environ,
        "TIKTOK_API_BASE_URL": str(fake.base_url).rstrip("/"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    publishing = agencies[: args.agencies]
    # A video TikTok's processing takes (the fake checks codec, frame rate and size as TikTok does).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.mp4 import mp4_bytes

    video = mp4_bytes(duration=5, padding=200_000)
    due = timezone.now() + dt.timedelta(seconds=30 + args.agencies * 0.15)
    print(f"Preparing {args.agencies * 10} posts...", flush=True)
    for agency in publishing:
        with schema_context(agency.schema_name):
            for open_id, privacy in GOOD_CREATORS.items():
                tokens = fake.post("/_fake/tokens", json={"open_id": open_id}).json()
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
                        width=1080,
                        height=1920,
                        frame_rate=30,
                        video_codec="H.264",
                        probed_at=timezone.now(),
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

    def count(statuses: list[str]) -> int:
        # One statement for all agencies: the benchmark's own polling stays out of the way.
        selects = [
            f"SELECT count(*) AS n FROM {connection.ops.quote_name(a.schema_name)}.posts_post "  # noqa: S608
            "WHERE status = ANY(%s)"
            for a in publishing
        ]
        with connection.cursor() as cursor:
            union = " UNION ALL ".join(selects)
            cursor.execute(f"SELECT sum(n) FROM ({union}) AS c", [statuses] * len(selects))  # noqa: S608
            return int(cursor.fetchone()[0])

    while (
        count([PostStatus.PROCESSING, PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION])
        < total
    ):
        time.sleep(1)
    uploaded_at = timezone.now()
    while count([PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION]) < total:
        time.sleep(1)
    done_at = timezone.now()
    lateness: list[float] = []
    outcomes: Counter[tuple[str, str]] = Counter()
    phases: dict[str, list[float]] = defaultdict(list)
    for agency in publishing:
        with schema_context(agency.schema_name):
            outcomes.update(Post.objects.values_list("status", "last_error_code"))
            for started_at in PublishAttempt.objects.filter(kind=AttemptKind.INIT).values_list(
                "started_at", flat=True
            ):
                lateness.append((started_at - due).total_seconds())
            attempts: dict[Any, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
            for post_id, kind, started, finished in PublishAttempt.objects.values_list(
                "post_id", "kind", "started_at", "finished_at"
            ):
                attempts[post_id][kind].append((started, finished))
            for post_id, claimed_at in Post.objects.values_list("id", "claimed_at"):
                add_phases(phases, due, claimed_at, attempts[post_id])
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
    fake.close()

    print()
    print(
        f"Agency schema clone (median of 5, rolled back): {early_clone * 1000:.0f} ms with 10 agencies, "
        f"{late_clone * 1000:.0f} ms with {len(agencies)}; whole agency_create (2 at a time): "
        f"{early_create * 1000:.0f} ms for the first 10, {late_create * 1000:.0f} ms for the last {last}"
    )
    print(
        f"Dispatcher tick, one due post (median of {TICKS}): {small_tick * 1000:.2f} ms with 10 agencies, "
        f"{large_tick * 1000:.2f} ms with {len(agencies)} agencies; ratio {large_tick / small_tick:.2f}"
    )
    print(f"{total} posts due at once, {len(publishing)} agencies, 2 worker processes x 8 threads:")
    print(
        f"  due → init lateness: p50 {percentile(lateness, 50):.1f} s, p99 {percentile(lateness, 99):.1f} s, "
        f"max {max(lateness):.1f} s"
    )
    print(
        f"  all uploaded {all_uploaded:.1f} s after due ({publish_rate:.1f} posts/s); all final "
        f"{(done_at - due).total_seconds():.1f} s after due"
    )
    print("  where the time went (p50 / p99 / max, seconds):")
    for phase in PHASES:
        values = phases[phase] or [0.0]
        print(
            f"    {phase:<34} {percentile(values, 50):6.2f} {percentile(values, 99):6.2f} {max(values):6.2f}"
        )
    print("  outcomes (status, last error code):")
    for (status, code), n in outcomes.most_common():
        print(f"    {n:5d}  {status}{f' ({code})' if code else ''}")
    print(
        f"  no-op actor on the same workers: {noop_rate:.0f} messages/s; publish / no-op: "
        f"{publish_rate / noop_rate:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
