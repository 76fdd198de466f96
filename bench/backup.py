"""Backup benchmark: back up and restore one agency with many posts and much media, in a database
and bucket of its own.

    python -m bench.backup [--posts 20000] [--megabytes 1000] [--objects 40]

The agency gets `--posts` posts (each with an audit entry) and `--objects` media objects
totalling `--megabytes` in the object store `make bench` found or started. Then
`manage.py agency_backup` and `manage.py agency_restore --as` (a copy beside it) run as processes of
their own. Printed, for each: its time, the archive's size, the peak RSS of the process and its
children (pg_dump, pg_restore) over the idle RSS of a `manage.py` process doing nothing, and a
ratio against a baseline measured in the same run: copying every object from storage into a
local file (backup), writing them all back to storage (restore). Goals: peak memory under 150 MB
over idle whatever the media's size (objects are streamed); ratios at least 0.5 (the media
dominate; a restore reads the archive twice, checking it whole before it makes anything).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

from bench.media import ROOT
from bench.media import Peak as _Peak

MB = 1_000_000
PIECE = 1024 * 1024


class Peak(_Peak):
    """bench.media's sampler, quiet about a process that ends between two looks."""

    def rss(self) -> int:
        try:
            return super().rss()
        except psutil.Error:
            return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--megabytes", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=40)
    args = parser.parse_args()
    import dj_database_url

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postline")
    config = dj_database_url.parse(base_url)
    bench_db = f"postline_bench_backup_{os.getpid()}"
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
    os.environ["S3_BUCKET"] = f"postline-bench-{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    folder = Path(tempfile.mkdtemp(prefix="postline-bench-backup-"))
    try:
        return run(args, folder)
    finally:
        from django.conf import settings
        from django.core.files.storage import default_storage
        from django.db import connections

        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        if settings.MEDIA_STORAGE == "s3":
            client = default_storage.client  # type: ignore[attr-defined]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.S3_BUCKET):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
                if keys:
                    client.delete_objects(Bucket=settings.S3_BUCKET, Delete={"Objects": keys, "Quiet": True})
            client.delete_bucket(Bucket=settings.S3_BUCKET)
        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def seed(slug: str, posts: int, megabytes: int, objects: int) -> list[str]:
    """The agency's posts, audit entries and media; the media's names."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import TikTokAccount
    from apps.audit.models import AuditLog
    from apps.media.storage import media_storage
    from apps.posts.models import Post, PostMedia, PostStatus
    from tenants.services import agency_create

    agency = agency_create(
        slug=slug, name="Bench", owner_email="owner@bench.example", owner_password=f"bench-{uuid.uuid4().hex}"
    )
    storage = media_storage()
    piece = os.urandom(PIECE)
    names = []
    with schema_context(agency.schema_name):
        account = TikTokAccount.objects.create(open_id="bench-open-id", username="bench")
        now = timezone.now()
        for start in range(0, posts, 2000):
            made = Post.objects.bulk_create(
                Post(
                    account=account,
                    caption=f"Post {n} " + "words " * 30,
                    status=PostStatus.PUBLISHED if n % 3 else PostStatus.DRAFT,
                    privacy_level="PUBLIC_TO_EVERYONE",
                    publish_id=f"v_pub_{n}" if n % 3 else "",
                    published_at=now if n % 3 else None,
                )
                for n in range(start, min(posts, start + 2000))
            )
            AuditLog.objects.bulk_create(
                AuditLog(action="post.created", object_type="posts.post", object_id=str(p.pk)) for p in made
            )
        size = megabytes * MB // objects
        for n in range(objects):
            name = f"posts/video/bench-{n:03d}.mp4"
            writer = storage.open_writer(name, content_type="video/mp4")
            left = size
            while left > 0:
                writer.write(piece[: min(PIECE, left)])
                left -= PIECE
            writer.complete()
            PostMedia.objects.create(
                post=made[n % len(made)], file=name, size_bytes=size, mime_type="video/mp4", sha256="0" * 64
            )
            names.append(name)
    connection.set_schema_to_public()
    return names


def timed(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS over idle in MB) of a manage.py command and its children."""
    process = subprocess.Popen([sys.executable, "manage.py", *argv], cwd=ROOT)  # noqa: S603
    started = time.perf_counter()
    with Peak(process.pid) as peak:
        code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"manage.py {' '.join(argv)} failed ({code})")
    return seconds, peak.peak / 2**20


def idle() -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a manage.py process that loads Django and ends: what any
    command costs before it works, taken off the figures below."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "shell", "-c", "pass"], cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", "import time; time.sleep(3)"], cwd=ROOT
    )
    with Peak(process.pid) as peak:
        process.wait()
    return seconds, peak.peak / 2**20


def run(args: argparse.Namespace, folder: Path) -> int:
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from apps.media.storage import media_storage

    call_command("migrate_all", verbosity=0)
    names = seed("bench-backup", args.posts, args.megabytes, args.objects)
    storage = media_storage()
    sizes = dict(storage.agency_objects("bench_backup"))

    # Baselines: every object copied from storage into one local file (what any backup does), then
    # written back to storage under another prefix (what any restore does).
    started = time.perf_counter()
    with schema_context("bench_backup"), (folder / "baseline").open("wb") as copy:
        for name in names:
            for data in storage.iter_range(name, 0, sizes[name] - 1):
                copy.write(data)
    read_seconds = time.perf_counter() - started
    (folder / "baseline").unlink()
    started = time.perf_counter()
    piece = os.urandom(PIECE)
    with schema_context("bench_baseline"):
        for name in names:
            writer = storage.open_writer(name, content_type="video/mp4")
            left = sizes[name]
            while left > 0:
                writer.write(piece[: min(PIECE, left)])
                left -= PIECE
            writer.complete()
    write_seconds = time.perf_counter() - started
    storage.delete_agency("bench_baseline")

    startup, idle_mb = idle()
    archive = folder / "bench.tar"
    backup_seconds, backup_peak = timed(["agency_backup", "bench-backup", "--output", str(archive)])
    restore_seconds, restore_peak = timed(["agency_restore", str(archive), "--as", "bench-copy"])
    backup_seconds, restore_seconds = backup_seconds - startup, restore_seconds - startup
    size_mb = archive.stat().st_size / MB
    print(
        f"agency: {args.posts:,} posts (and as many audit entries), {len(names)} media objects, "
        f"{sum(sizes.values()) / MB:,.0f} MB; archive {size_mb:,.0f} MB; "
        f"a command's start-up ({startup:.1f} s, {idle_mb:.0f} MB) taken off"
    )
    print(
        f"backup:  {backup_seconds:6.1f} s, peak {backup_peak - idle_mb:5.0f} MB over idle; throughput "
        f"{read_seconds / backup_seconds:.2f} of a plain copy of the media to a file ({read_seconds:.1f} s)"
    )
    print(
        f"restore: {restore_seconds:6.1f} s, peak {restore_peak - idle_mb:5.0f} MB over idle; throughput "
        f"{write_seconds / restore_seconds:.2f} of a plain write of the media ({write_seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
