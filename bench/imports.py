"""Bulk import benchmark: a 500-line file checked and imported, and the calendar with 2,000 posts
in one month, each against a trivial view.

    python -m bench.imports [--rounds 30]

One agency in a database of its own, with 10 accounts connected at the fake TikTok (in this
process, over a real socket) and a video in the agency's storage. A 500-line CSV (one in five
lines with a video, scheduled; the others drafts) is uploaded, checked with the composer's rules
(`rows_check`: what the preview page does) and imported (`import_run`: what the worker does,
each post through `post_save`, each video copied in the storage); both are timed per line. Then
2,000 posts are put in this month and the month's calendar is asked for through gunicorn with
the production configuration (bench.web), in turn with the header's notification bell
(`/notifications/bell/`). Each figure is given as a ratio to the bell's median time.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import statistics
import sys
import time
import uuid
from typing import Any

import httpx

from bench.media import check
from bench.web import bench_database, paired, production_server, sign_in

PASSWORD = f"bench-{uuid.uuid4().hex}"
OWNER = "owner@bench-imports.example"
ZONE = "Europe/Paris"
ACCOUNTS = 10
LINES = 500
WITH_VIDEO_EVERY = 5
CALENDAR_POSTS = 2_000
TRIVIAL = "/notifications/bell/"
OPEN_IDS = ("fake-open-public-001", "fake-open-studio-006")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with bench_database("imports"):
        from django.conf import settings

        from apps.fake_tiktok.server import FakeTikTok

        fake = FakeTikTok(
            client_key=settings.TIKTOK_CLIENT_KEY, client_secret=settings.TIKTOK_CLIENT_SECRET
        ).start()
        settings.TIKTOK_API_BASE_URL = fake.base_url
        try:
            host, check_s, import_s, counts = seed_and_import(fake)
        finally:
            fake.stop()
        with production_server() as server:
            headers = sign_in(server.port, host, OWNER, PASSWORD)
            base = f"http://127.0.0.1:{server.port}"
            month = dt.datetime.now(tz=_zone()).date().isoformat()
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                # The bell alone, for the per-line ratios.
                _, trivial, _ = paired(http, TRIVIAL, TRIVIAL, args.rounds)
                calendar, trivial_paired, size = paired(
                    http, f"/calendar/?view=month&date={month}", TRIVIAL, args.rounds, b"cal-month"
                )
    bell_ms = statistics.median([trivial.median, trivial_paired.median])
    per_check, per_import = 1000 * check_s / LINES, 1000 * import_s / LINES
    print(
        f"Imports: {LINES} lines ({LINES // WITH_VIDEO_EVERY} scheduled with a video, the rest drafts) "
        f"over {ACCOUNTS} accounts; the trivial view ({TRIVIAL}) takes {bell_ms:.1f} ms (median of "
        f"{args.rounds})",
        flush=True,
    )
    print(
        f"  check every line (the preview)   {check_s:6.2f} s  {per_check:6.2f} ms a line  "
        f"ratio {per_check / bell_ms:5.2f}x the trivial view"
    )
    print(
        f"  import (the worker's job)        {import_s:6.2f} s  {per_import:6.2f} ms a line  "
        f"ratio {per_import / bell_ms:5.2f}x the trivial view  ({counts})"
    )
    print(
        f"  calendar: month, {CALENDAR_POSTS} posts   {calendar.median:7.1f} ms  trivial "
        f"{trivial_paired.median:5.1f} ms  ratio {calendar.median / trivial_paired.median:5.1f}x  "
        f"{size / 1000:6.0f} kB"
    )
    return 0


def _zone() -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(ZONE)


def seed_and_import(fake: Any) -> tuple[str, float, float, dict[str, int]]:
    from django.core.files.base import ContentFile
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.imports.models import ImportMode, ImportStatus, PostImport
    from apps.imports.services import import_map, import_run, import_upload, rows_check
    from apps.posts.models import MediaKind, Post, PostMedia, PostStatus
    from apps.users.models import User
    from tenants.services import agency_create
    from tests.factories import PostFactory, TikTokAccountFactory
    from tests.mp4 import mp4_bytes

    agency = agency_create(
        slug="bench-imports", name="Bench Imports Agency", owner_email=OWNER, owner_password=PASSWORD
    )
    now = timezone.now()
    with schema_context(agency.schema_name):
        owner = User.objects.get(email=OWNER)
        owner.time_zone = ZONE
        owner.save(update_fields=["time_zone"])
        accounts = []
        for index in range(ACCOUNTS):
            open_id = OPEN_IDS[index % len(OPEN_IDS)]
            tokens = fake.issue_tokens(open_id)
            accounts.append(
                TikTokAccountFactory(
                    open_id=f"{open_id}" if index < len(OPEN_IDS) else f"bench-{index}",
                    username=f"bench.account{index:02d}",
                    access_token=tokens["access_token"],
                    refresh_token=tokens["refresh_token"],
                )
            )
        data = mp4_bytes()
        video = PostMedia(
            kind=MediaKind.VIDEO,
            size_bytes=len(data),
            mime_type="video/mp4",
            sha256=hashlib.sha256(data).hexdigest(),
            original_name="launch.mp4",
            duration_seconds=12,
            width=1080,
            height=1920,
            frame_rate=30,
            video_codec="H.264",
            probed_at=now,
            created_by=owner,
        )
        video.file.save("launch.mp4", ContentFile(data), save=True)

        # The file: lines two months ahead (out of the calendar's month), 12 a day per account.
        start = (now.astimezone(_zone()) + dt.timedelta(days=62)).replace(hour=8, minute=0, second=0)
        text = io.StringIO()
        lines = csv.writer(text)
        lines.writerow(["Account", "Caption", "Date", "Time", "Time zone", "Privacy", "Comments", "Media"])
        for index in range(LINES):
            account = accounts[index % 2]  # the two creators the fake knows by these tokens
            when = start + dt.timedelta(days=index // 24, minutes=30 * (index % 24))
            media = "launch.mp4" if index % WITH_VIDEO_EVERY == 0 else ""
            lines.writerow(
                [
                    account.username,
                    f"Planned post {index} 🍞 #bench",
                    when.date().isoformat(),
                    when.strftime("%H:%M"),
                    ZONE,
                    "Everyone",
                    "yes",
                    media,
                ]
            )
        post_import = import_upload(by=owner, name="plan.csv", data=text.getvalue().encode())
        import_map(post_import=post_import, mapping=post_import.mapping, mode=ImportMode.SCHEDULE)
        began = time.perf_counter()
        preview = rows_check(post_import=post_import, user=owner)
        check_s = time.perf_counter() - began
        check(
            not preview.bad,
            f"{len(preview.bad)} lines refused: {preview.bad[0].errors if preview.bad else ''}",
        )
        PostImport.objects.filter(pk=post_import.pk).update(status=ImportStatus.QUEUED)
        began = time.perf_counter()
        done = import_run(str(post_import.pk))
        import_s = time.perf_counter() - began
        check(done is not None and done.counts.get("imported") == LINES, f"imported {done and done.counts}")

        # The calendar's month: 2,000 posts over its days.
        local = now.astimezone(_zone())
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
        span = month_end - month_start
        Post.objects.bulk_create(
            [
                PostFactory.build(
                    account=accounts[index % ACCOUNTS],
                    status=PostStatus.SCHEDULED if index % 5 else PostStatus.DRAFT,
                    scheduled_at=month_start + span * (index + 0.5) / CALENDAR_POSTS,
                    created_by=owner,
                    caption=f"Calendar post {index}",
                )
                for index in range(CALENDAR_POSTS)
            ],
            batch_size=1000,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        counts = {k: v for k, v in (done.counts if done else {}).items() if v}
    connection.set_schema_to_public()
    return str(agency.primary_host), check_s, import_s, counts


if __name__ == "__main__":
    sys.exit(main())
