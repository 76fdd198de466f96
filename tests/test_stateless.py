"""Processes that share nothing but PostgreSQL, Redis and the object store.

A web process and two workers, each in a working directory (and temporary folder, and media
folder) of its own, on one S3 endpoint: a video uploaded through the web process is published by
a worker; the worker uploading it to TikTok is killed halfway and the other one finishes, from
TikTok's reported offset, with one create-post call in all.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostMedia, PostStatus, PublishAttempt
from tests.conftest import OWNER_PASSWORD, process_env, wait_for
from tests.factories import TikTokAccountFactory
from tests.mp4 import mp4_bytes
from tests.servers import free_port, kill_group, start_process
from tests.test_composer import compose_data

VIDEO_BYTES = 32_000_000  # three chunks for TikTok: 10, 10 and 12 MB


def own_folder(root: Path, name: str, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A process's working directory, temporary and media folders, in a tree of its own."""
    home = root / name
    (home / "tmp").mkdir(parents=True)
    (home / "media").mkdir()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}?application_name={name}"
    return home, {
        **env,
        "DATABASE_URL": url,
        "TMPDIR": str(home / "tmp"),
        "MEDIA_ROOT": str(home / "media"),
        "PYTHONPATH": str(settings.BASE_DIR),
    }


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def uploading_worker() -> str | None:
    """The worker holding a post's lock (the one publishing it), by its connection's name."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND a.datname = current_database() "
            "AND a.application_name LIKE %s",
            ["worker-%"],
        )
        row = cursor.fetchone()
    return str(row[0]) if row else None


def test_a_video_uploaded_to_the_web_is_published_by_whichever_worker_survives(
    make_agency: Any, tiktok: FakeTikTok, broker_namespace: str, django_db_blocker: Any, tmp_path: Path
) -> None:
    # Given an agency with a connected account, and TikTok taking a second for each chunk
    agency = make_agency()
    tokens = tiktok.issue_tokens("fake-open-public-001")
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        account = TikTokAccountFactory(
            open_id="fake-open-public-001",
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )
    tiktok.add_fault("upload", "slow", rate=1.0, delay=1.0)
    env = process_env(tiktok, broker_namespace, PUBLISH_LEASE_SECONDS="4", LOG_LEVEL="WARNING")
    port = free_port()
    folders: dict[str, Path] = {}
    processes: dict[str, Any] = {}
    for name, argv in (
        ("web", [str(settings.BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"]),
        ("scheduler", [str(settings.BASE_DIR / "manage.py"), "run_scheduler", "--interval", "0.2"]),
        ("worker-a", ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "1"]),
        ("worker-b", ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "1"]),
    ):
        folders[name], own_env = own_folder(tmp_path, name, env)
        processes[name] = start_process(argv, own_env, cwd=folders[name], log=folders[name] / "log")
    try:
        web = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Host": agency.primary_host}, timeout=60
        )
        wait_for(lambda: _answers(web), timeout=30)

        # When the owner signs in and uploads the video through the web process
        token = _csrf(web, "/login/")
        signed_in = web.post(
            "/login/",
            data={
                "username": "owner@committed.example",
                "password": OWNER_PASSWORD,
                "csrfmiddlewaretoken": token,
            },
        )
        assert signed_in.status_code == 302
        video = mp4_bytes(duration=20, padding=VIDEO_BYTES - len(mp4_bytes(duration=20)))
        assert len(video) == VIDEO_BYTES
        token = _csrf(web, "/posts/new/")
        uploaded = web.post(
            "/posts/media/",
            files={"video": ("clip.mp4", video, "video/mp4")},
            headers={"X-CSRFToken": token},
        )
        assert uploaded.status_code == 201, uploaded.text
        media_id = re.search(r'name="media_id" value="([^"]+)"', uploaded.text)
        assert media_id is not None
        # And publishes it now
        published = web.post(
            "/posts/new/",
            data={**compose_data(account, media_id.group(1), action="now"), "csrfmiddlewaretoken": token},
        )
        assert published.status_code == 302, published.text

        # And the worker sending it to TikTok dies after its first chunk
        wait_for(lambda: any(c["endpoint"] == "upload" and c["status"] == 206 for c in tiktok.calls), 40)
        with django_db_blocker.unblock():
            victim = wait_for(uploading_worker, timeout=10)
        kill_group(processes[victim], signal.SIGKILL)
        survivor = "worker-b" if victim == "worker-a" else "worker-a"
        chunks_before = sum(1 for c in tiktok.calls if c["endpoint"] == "upload")
        print(f"killed {victim} after {chunks_before} upload calls")

        # Then the other worker finishes the post from where TikTok's upload stood
        def done() -> Post | None:
            with django_db_blocker.unblock(), schema_context(agency.schema_name):
                post = Post.objects.filter(media__pk=media_id.group(1)).first()
            return post if post is not None and post.status == PostStatus.PUBLISHED else None

        post = wait_for(done, timeout=60)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            media = PostMedia.objects.get(pk=media_id.group(1))
            uploads = PublishAttempt.objects.filter(post=post, kind=AttemptKind.UPLOAD).count()
        received = tiktok.publish(post.publish_id)
        assert received["received_bytes"] == VIDEO_BYTES
        assert received["sha256"] == media.sha256  # exactly the uploaded video, nothing lost
        assert len(tiktok.create_post_calls()) == 1  # one create-post call in all
        assert 3 <= uploads <= 5  # resumed: a chunk or two again at most, not the whole video
        assert processes[survivor].poll() is None
        # And no process kept anything on its own disk: the video went through the object store
        for name, folder in folders.items():
            assert files_under(folder / "media") == [], name
            assert sorted(p.name for p in folder.iterdir()) == ["log", "media", "tmp"], name
            assert [p for p in files_under(folder / "tmp") if p.stat().st_size > 1_000_000] == [], name
    finally:
        tiktok.clear_faults()
        for process in processes.values():
            if process.poll() is None:
                kill_group(process, signal.SIGTERM)


def _answers(web: httpx.Client) -> bool:
    try:
        return web.get("/login/").status_code == 200
    except httpx.TransportError:
        return False


def _csrf(web: httpx.Client, path: str) -> str:
    page = web.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)
