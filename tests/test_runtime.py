"""The production runtime as the image runs it: gunicorn with production settings (DEBUG off,
collected static files, JSON logs, multiprocess metrics) and `run_worker`, on the test
database, talking to the fake TikTok. One stack for the module: starting it costs seconds."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.posts.services import post_schedule
from apps.publishing.tasks import publishing_publish
from tests.browser.conftest import free_port
from tests.conftest import process_env, wait_for
from tests.factories import ready_post
from tests.test_image import final_stage

METRICS_TOKEN = "metrics-token-for-the-test-0123456789"


def production_env(fake: FakeTikTok, namespace: str, tmp: Path, **extra: str) -> dict[str, str]:
    """What a production process gets (the README's variables), on the test database."""
    return process_env(
        fake,
        namespace,
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEYS),
        TIKTOK_CLIENT_KEY=settings.TIKTOK_CLIENT_KEY,
        TIKTOK_CLIENT_SECRET=settings.TIKTOK_CLIENT_SECRET,
        TIKTOK_AUTH_URL=f"{fake.base_url}/v2/auth/authorize/",
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        STATIC_ROOT=str(tmp / "static"),
        METRICS_TOKEN=METRICS_TOKEN,
        LOG_LEVEL="INFO",
        **extra,
    )


class Stack:
    def __init__(self, port: int, log: Path, env: dict[str, str]) -> None:
        self.port = port
        self.log = log
        self.env = env

    def get(self, path: str, host: str = "localhost", **headers: str) -> http.client.HTTPResponse:
        """A GET with the path sent exactly as given (no client-side normalising), as the
        proxy in front would forward it over TLS."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        conn.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https", **headers})
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "localhost"})
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def gunicorn(
    django_db_setup: None,
    fake_tiktok: FakeTikTok,
    broker_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    env = production_env(
        fake_tiktok,
        f"{broker_namespace}-gunicorn",
        tmp,
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics-web"),
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
    )
    # As the image is built: static files collected with production settings.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        env=env,
        cwd=settings.BASE_DIR,
        check=True,
        timeout=120,
    )
    port = free_port()
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
            cwd=settings.BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_for_port(port, process, log)
    yield Stack(port, log, env)
    process.terminate()
    process.wait(timeout=30)


def test_health_and_readiness_answer_on_the_root_domain_and_by_address(gunicorn: Stack) -> None:
    for host in ("localhost", "127.0.0.1"):
        alive = gunicorn.get("/healthz", host=host)
        assert (alive.status, json.loads(alive.body)) == (200, {"status": "ok"})  # type: ignore[attr-defined]
    # Plain HTTP, as a load balancer's health check talks to the process: not redirected.
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=20)
    conn.request("GET", "/readyz", headers={"Host": "127.0.0.1"})
    ready = conn.getresponse()
    body = json.loads(ready.read())
    assert ready.status == 200, body
    assert body == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "storage": "ok"},
    }


def test_the_images_healthcheck_passes_against_gunicorn_and_fails_when_nothing_answers(
    gunicorn: Stack,
) -> None:
    (healthcheck,) = [args for instruction, args in final_stage() if instruction == "HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python" and ":8000/healthz" in command[-1]

    def run(port: int) -> int:
        script = command[-1].replace(":8000/", f":{port}/")
        return subprocess.run([sys.executable, *command[1:-1], script], timeout=30).returncode

    assert run(gunicorn.port) == 0
    assert run(free_port()) != 0


def test_http_is_redirected_to_https_and_https_gets_hsts(gunicorn: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=20)
    conn.request("GET", "/login/", headers={"Host": "localhost"})  # no X-Forwarded-Proto
    plain = conn.getresponse()
    plain.read()
    assert plain.status == 301 and plain.headers["Location"] == "https://localhost/login/"

    secure = gunicorn.get("/")
    assert secure.status == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_static_files_are_compressed_with_hashed_names_and_dot_dot_is_not_found(gunicorn: Stack) -> None:
    manifest = json.loads((Path(gunicorn.env["STATIC_ROOT"]) / "staticfiles.json").read_text())
    hashed = manifest["paths"]["css/postline.css"]
    assert re.fullmatch(r"css/postline\.[0-9a-f]{12}\.css", hashed)

    page = gunicorn.get("/")
    assert f"/static/{hashed}" in page.body.decode()  # type: ignore[attr-defined]
    css = gunicorn.get(f"/static/{hashed}", **{"Accept-Encoding": "gzip"})
    assert css.status == 200 and css.headers["Content-Encoding"] == "gzip"
    assert "immutable" in css.headers["Cache-Control"]

    for path in ("/static/../", "/static/../config/settings.py", "/static/..%2fconfig%2fsettings.py"):
        assert gunicorn.get(path).status == 404, path


def test_metrics_need_the_token(gunicorn: Stack) -> None:
    assert gunicorn.get("/metrics").status == 401
    assert gunicorn.get("/metrics", Authorization="Bearer wrong-token").status == 401
    scraped = gunicorn.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
    assert scraped.status == 200
    text = scraped.body.decode()  # type: ignore[attr-defined]
    assert 'postline_queue_depth{queue="publish"}' in text
    assert "# TYPE postline_publish_lateness_seconds histogram" in text
    # On an agency's host it is that agency's URL, which does not exist.
    assert (
        gunicorn.get("/metrics", host="alpha.localhost", Authorization=f"Bearer {METRICS_TOKEN}").status
        == 404
    )


def _samples(text: str, name: str) -> dict[str, float]:
    """`name{labels} value` lines of a Prometheus exposition, by their label text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


def test_worker_metrics_logs_and_dead_letters(
    gunicorn: Stack,
    make_agency: Any,
    tiktok: FakeTikTok,
    django_db_blocker: Any,
    tmp_path: Path,
    broker_namespace: str,
) -> None:
    """Two worker processes publish two posts: the worker host's metrics sum both processes;
    a message naming no agency is dead-lettered and counted on the web's /metrics; every log
    line is one JSON object with its context, and the account's token is in none of them."""
    namespace = gunicorn.env["DRAMATIQ_NAMESPACE"]
    metrics_port = free_port()
    worker_log = tmp_path / "worker.log"
    env = {**gunicorn.env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics-worker")}
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_worker",
                "--processes",
                "2",
                "--threads",
                "2",
                "--metrics-port",
                str(metrics_port),
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        agency = make_agency()
        tokens: list[str] = []
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            posts = []
            for open_id in ("fake-open-public-001", "fake-open-studio-006"):
                post = ready_post(tiktok, open_id=open_id, status=PostStatus.DRAFT, scheduled_at=None)
                tokens.append(str(TikTokAccount.objects.get(pk=post.account_id).access_token.reveal()))
                due = timezone.now() + dt.timedelta(seconds=1)
                post_schedule(post=post, scheduled_at=due, time_zone="UTC", by=None)
                posts.append(post)
        broker: Any = dramatiq.get_broker()
        previous, broker.namespace = broker.namespace, namespace
        scheduler = subprocess.Popen(
            [sys.executable, "manage.py", "run_scheduler", "--interval", "0.3"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            publishing_publish.send("no-such-post")  # no agency in it: refused, dead-lettered

            def published() -> bool:
                with django_db_blocker.unblock(), schema_context(agency.schema_name):
                    return (
                        Post.objects.filter(pk__in=[p.pk for p in posts], status=PostStatus.PUBLISHED).count()
                        == 2
                    )

            wait_for(published, timeout=180)  # a generous cap: CI machines are shared
        finally:
            broker.namespace = previous
            scheduler.terminate()
            scheduler.wait(timeout=20)

        # The worker host's metrics: both processes' samples, summed.
        _wait_for_port(metrics_port, worker, worker_log)
        conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=20)
        conn.request("GET", "/metrics")
        worker_metrics = conn.getresponse().read().decode()
        assert _samples(worker_metrics, "postline_posts_final_total") == {'{state="published"}': 2.0}
        assert _samples(worker_metrics, "postline_publish_lateness_seconds_count") == {"": 2.0}
        init_calls = _samples(worker_metrics, "postline_tiktok_request_seconds_count")
        assert init_calls['{code="ok",endpoint="init"}'] == 2.0
        assert init_calls['{code="ok",endpoint="upload"}'] >= 2.0
        pids = {p.name.rsplit("_", 1)[-1] for p in (tmp_path / "metrics-worker").glob("*.db")}
        assert len(pids) >= 2, pids  # files of more than one process were summed

        web = gunicorn.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}").body.decode()  # type: ignore[attr-defined]
        assert _samples(web, "postline_dead_letters")['{queue="publish"}'] == 1.0
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    # A request with a one-time code in its query string, for the log check below.
    gunicorn.get("/oauth/tiktok/callback/?code=planted-one-time-code-123&state=x")
    lines = gunicorn.log_lines() + [line for line in worker_log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [r for r in records if r["logger"] == "postline.request"]
    assert requests and all(re.fullmatch(r"[0-9a-f]{32}", r["request_id"]) for r in requests)
    assert {r["schema"] for r in requests} >= {"public"}
    published_lines = [r for r in records if "is now published" in r["message"]]
    assert len(published_lines) == 2
    assert all(r["schema"] == agency.schema_name and r["message_id"] for r in published_lines)
    whole = "\n".join(lines)
    for token in [*tokens, "planted-one-time-code-123"]:
        assert token not in whole
