"""Media benchmark: upload and publish a large video, in a database and bucket of its own.

    python -m bench.media [--megabytes 1000]

A web process (runserver), one worker and the scheduler on the object store `make bench` found
or started, and the fake TikTok in a process of its own. The video (an MP4 of `--megabytes`,
generated as it is sent, never held whole) is uploaded through the composer's upload view and
published at once. Printed:

- the peak RSS of the web process during the upload and of the worker during the publish, over
  each one's idle RSS (goal: under 150 MB each);
- the upload's throughput (browser → web → storage, with hashing and probing) and the publish's
  (storage → worker → TikTok, by ranged reads), each against a plain read of the same object
  from storage in this process, as ratios (goal: at least 0.5).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.publishing import start_fake_tiktok

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
PIECE = 1024 * 1024
PASSWORD = f"bench-{uuid.uuid4().hex}"


def video_pieces(size: int) -> tuple[bytes, int]:
    """The head of an MP4 of exactly `size` bytes whose rest is zeros in its mdat box."""
    sys.path.insert(0, str(ROOT))
    from tests.mp4 import mp4_bytes

    small = mp4_bytes(duration=60, width=1080, height=1920)
    # The mdat box is last and its payload zeros: its header is rewritten for the full size.
    mdat_at = small.rfind(b"mdat") - 4
    head = small[:mdat_at] + struct.pack(">I", size - mdat_at) + b"mdat"
    return head, size - len(head)


class Peak:
    """Samples a process tree's RSS (the process and its children) every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = False

    def rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def __enter__(self) -> Peak:
        self.idle = self.rss()
        self.peak = self.idle
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __exit__(self, *exc: Any) -> None:
        self.running = False
        self.thread.join()

    @property
    def over_idle_mb(self) -> float:
        return (self.peak - self.idle) / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1000)
    args = parser.parse_args()
    import dj_database_url

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postline")
    config = dj_database_url.parse(base_url)
    bench_db = f"postline_bench_media_{os.getpid()}"
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
    os.environ["S3_BUCKET"] = f"postline-bench-{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["PUBLISH_POLL_BACKOFF"] = "1,1,1,2"
    os.environ["PASSWORD_HASHERS"] = "django.contrib.auth.hashers.MD5PasswordHasher"  # noqa: S105
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        return run(args, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        from django.conf import settings
        from django.core.files.storage import default_storage
        from django.db import connections

        if settings.MEDIA_STORAGE == "s3":
            client = default_storage.client  # type: ignore[attr-defined]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.S3_BUCKET):
                for item in page.get("Contents", ()):
                    client.delete_object(Bucket=settings.S3_BUCKET, Key=item["Key"])
            client.delete_bucket(Bucket=settings.S3_BUCKET)
        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def run(args: argparse.Namespace, processes: list[subprocess.Popen[bytes]]) -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import TikTokAccount
    from apps.media.storage import media_storage
    from apps.posts.models import AttemptKind, Post, PostMedia, PostStatus, PublishAttempt
    from tenants.services import agency_create

    call_command("migrate_all", verbosity=0)
    agency = agency_create(
        slug="bench-media", name="Bench", owner_email="owner@bench.example", owner_password=PASSWORD
    )
    fake = start_fake_tiktok(processes)
    tokens = fake.post("/_fake/tokens", json={"open_id": "fake-open-public-001"}).json()
    with schema_context(agency.schema_name):
        account = TikTokAccount.objects.create(
            open_id="fake-open-public-001",
            username="bench",
            granted_scopes=["user.info.basic", "video.publish", "video.upload"],
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            access_expires_at=timezone.now() + dt.timedelta(hours=2),
            refresh_expires_at=timezone.now() + dt.timedelta(days=100),
        )
    connection.set_schema_to_public()
    env = {**os.environ, "TIKTOK_API_BASE_URL": str(fake.base_url).rstrip("/")}
    port = free_port()
    web = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "1"],
        env=env,
        cwd=ROOT,
    )
    processes += [web, worker]
    processes.append(
        subprocess.Popen(
            [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"], env=env, cwd=ROOT
        )
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Host": agency.primary_host}, timeout=600
    )
    for _ in range(300):
        try:
            if client.get("/login/").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    token = _csrf(client, "/login/")
    signed_in = client.post(
        "/login/",
        data={"username": "owner@bench.example", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    check(signed_in.status_code == 302, signed_in.text)
    token = _csrf(client, "/posts/new/")
    time.sleep(3)  # the worker has booted and sits idle

    # --- Upload through the web process ---
    size = args.megabytes * MB
    head, zeros = video_pieces(size)
    boundary = uuid.uuid4().hex
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        yield preamble
        digest.update(head)
        yield head
        zero = b"\0" * PIECE
        left = zeros
        while left:
            piece = zero if left >= PIECE else zero[:left]
            digest.update(piece)
            left -= len(piece)
            yield piece
        yield closing

    print(f"Uploading {size / MB:,.0f} MB through the web process...", flush=True)
    with Peak(web.pid) as web_memory:
        began = time.perf_counter()
        uploaded = client.post(
            "/posts/media/",
            content=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(preamble) + size + len(closing)),
                "X-CSRFToken": token,
            },
        )
        upload_seconds = time.perf_counter() - began
    check(uploaded.status_code == 201, uploaded.text)
    found = re.search(r'name="media_id" value="([^"]+)"', uploaded.text)
    check(found is not None, "unexpected")
    media_id = found.group(1)
    with schema_context(agency.schema_name):
        media = PostMedia.objects.get(pk=media_id)
        check(media.sha256 == digest.hexdigest() and media.size_bytes == size, "unexpected")
        name = media.file.name
        read_seconds = plain_read(name, size)
        # And a plain write of as many bytes, part by part, from this process (the store's pace).
        began = time.perf_counter()
        writer = media_storage().open_writer("bench/plain-write", content_type="application/octet-stream")
        zero = b"\0" * PIECE
        for start in range(0, size, PIECE):
            writer.write(zero if size - start >= PIECE else zero[: size - start])
        writer.complete()
        write_seconds = time.perf_counter() - began
    connection.set_schema_to_public()

    # --- Publish it ---
    when = timezone.now()
    print("Publishing it...", flush=True)
    with Peak(worker.pid) as worker_memory:
        published = client.post(
            "/posts/new/",
            data={
                "account": str(account.pk),
                "caption": "bench",
                "privacy_level": "PUBLIC_TO_EVERYONE",
                "mode": "direct",
                "scheduled_date": when.date().isoformat(),
                "scheduled_time": when.strftime("%H:%M:%S"),
                "time_zone": "UTC",
                "action": "now",
                "media_id": media_id,
                "csrfmiddlewaretoken": token,
            },
        )
        check(published.status_code == 302, published.text)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with schema_context(agency.schema_name):
                post = Post.objects.filter(media__pk=media_id).first()
            if post is not None and post.status not in (PostStatus.SCHEDULED, PostStatus.PUBLISHING):
                break
            time.sleep(0.5)
    with schema_context(agency.schema_name):
        check(post is not None and post.status in (PostStatus.PROCESSING, PostStatus.PUBLISHED), post.status)
        chunks = list(
            PublishAttempt.objects.filter(post=post, kind=AttemptKind.UPLOAD).values_list(
                "started_at", "finished_at"
            )
        )
    connection.set_schema_to_public()
    publish_seconds = (max(f for _, f in chunks if f) - min(s for s, _ in chunks)).total_seconds()
    # The machine is shared: the baseline is the faster of the plain reads before and after.
    with schema_context(agency.schema_name):
        read_seconds = min(read_seconds, plain_read(name, size))
    connection.set_schema_to_public()
    received = fake.get(f"/_fake/publishes/{post.publish_id}").json()
    check(received["received_bytes"] == size and received["sha256"] == media.sha256, received)

    read_rate, write_rate = size / read_seconds, size / write_seconds
    upload_rate, publish_rate = size / upload_seconds, size / publish_seconds
    print(f"\nMedia: a {size / MB:,.0f} MB video, uploaded and published")
    print(f"  plain read from storage      {read_rate / MB:7.1f} MB/s  (baseline: best of two)")
    print(f"  plain write to storage       {write_rate / MB:7.1f} MB/s  (the store's own write pace)")
    print(
        f"  upload (web -> storage)      {upload_rate / MB:7.1f} MB/s  ratio {upload_rate / read_rate:.2f}"
        f" of the plain read, {upload_rate / write_rate:.2f} of the plain write"
    )
    print(
        f"  publish (storage -> TikTok)  {publish_rate / MB:7.1f} MB/s  ratio {publish_rate / read_rate:.2f}"
        f" of the plain read (goal >= 0.5), {len(chunks)} chunks"
    )
    print(
        f"  web RSS    idle {web_memory.idle / 2**20:6.0f} MB, peak {web_memory.peak / 2**20:6.0f} MB: "
        f"+{web_memory.over_idle_mb:.0f} MB over idle (goal < 150)"
    )
    print(
        f"  worker RSS idle {worker_memory.idle / 2**20:6.0f} MB, peak {worker_memory.peak / 2**20:6.0f} MB: "
        f"+{worker_memory.over_idle_mb:.0f} MB over idle (goal < 150)"
    )
    return 0


def plain_read(name: str, size: int) -> float:
    """Seconds to read the object from storage, in pieces, straight to nowhere."""
    from apps.media.storage import media_storage

    began = time.perf_counter()
    read = sum(len(piece) for piece in media_storage().iter_range(name, 0, size - 1))
    check(read == size, f"read {read} of {size} bytes")
    return time.perf_counter() - began


def check(condition: object, detail: object) -> None:
    if not condition:
        raise RuntimeError(f"benchmark run went wrong: {detail}")


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError(f"no CSRF token on {path}: HTTP {page.status_code}")
    return found.group(1)


if __name__ == "__main__":
    sys.exit(main())
