"""What the page benchmarks share: a database of their own, the production web server on it, a
signed-in session, and the ways of timing requests (bench.dashboard, bench.pages).

    with bench_database("dashboard"):        # creates it, points Django at it, drops it after
        host = seed(...)                     # one agency, made with the ORM in this process
        with production_server() as server:  # gunicorn as the image runs it, DEBUG off
            headers = sign_in(server.port, host, email, password)
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from bench.media import check, free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def bench_database(name: str) -> Iterator[str]:
    """A PostgreSQL database of this run's own (next to DATABASE_URL's), Django set up on it and
    migrated; dropped on the way out, whatever happened. Yields its URL."""
    import dj_database_url

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postline")
    config = dj_database_url.parse(base_url)
    database = f"postline_bench_{name}_{os.getpid()}"
    admin = psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{database}"')
    url = base_url.rsplit("/", 1)[0] + f"/{database}"
    os.environ["DATABASE_URL"] = url
    os.environ["DRAMATIQ_NAMESPACE"] = f"postline-bench-{uuid.uuid4().hex[:6]}"
    os.environ["PASSWORD_HASHERS"] = "django.contrib.auth.hashers.MD5PasswordHasher"  # noqa: S105
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))  # tests.factories
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate_all", verbosity=0)
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]  # gunicorn's master

    def workers_peak_rss(self) -> int:
        """The largest peak resident memory of gunicorn's worker processes, in bytes."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        peaks = []
        for worker in children:
            with open(f"/proc/{worker}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) * 1024)
        return max(peaks, default=0)


@contextmanager
def production_server() -> Iterator[Server]:
    """gunicorn with the production configuration (config/gunicorn.py, its default process and
    thread counts, DEBUG off, static files collected as the image does, JSON logs, multiprocess
    metrics) on a free local port, for the database Django is set up on."""
    from django.conf import settings

    with tempfile.TemporaryDirectory(prefix="postline-bench-web-") as folder:
        tmp = Path(folder)
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "TIKTOK_AUTH_URL": "https://tiktok.invalid/v2/auth/authorize/",
            "TIKTOK_API_BASE_URL": "https://tiktok.invalid",
            "TIKTOK_CLIENT_SECRET": settings.TIKTOK_CLIENT_SECRET,
            "S3_SECRET_ACCESS_KEY": settings.S3_SECRET_ACCESS_KEY or "unused",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "STATIC_ROOT": str(tmp / "static"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(web, port)
            yield Server(port=port, process=web)
        finally:
            web.terminate()
            web.wait(timeout=60)


def _wait_for(web: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        check(web.poll() is None, "gunicorn exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer")


def sign_in(port: int, host: str, email: str, password: str) -> dict[str, str]:
    """Request headers for `email`'s session, signed in through the login page as a browser over
    TLS would (the cookies are Secure, so they are carried by hand over this plain connection)."""
    base = {"Host": host, "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=base, timeout=30) as client:
        page = client.get("/login/")
        check(page.status_code == 200, page.status_code)
        csrf_cookie = page.cookies["csrftoken"]
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if found is None:
            raise RuntimeError("no CSRF token on the login page")
        signed = client.post(
            "/login/",
            data={"username": email, "password": password, "csrfmiddlewaretoken": found.group(1)},
            headers={
                "Cookie": f"csrftoken={csrf_cookie}",
                "Origin": f"https://{host}",
                "Referer": f"https://{host}/login/",
            },
        )
        check(signed.status_code == 302, f"sign-in of {email} answered {signed.status_code}")
        return {**base, "Cookie": f"sessionid={signed.cookies['sessionid']}; csrftoken={csrf_cookie}"}


# --- Timing ---


class Run:
    """Latencies of one kind of request, and what they add up to."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.errors = 0
        self.seconds = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def median(self) -> float:
        """In milliseconds."""
        return statistics.median(self.latencies) * 1000

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    def line(self) -> str:
        return (
            f"  {self.name:<30} {self.rate:7.1f} req/s  p50 {self.pct(50):6.1f} ms"
            f"  p95 {self.pct(95):6.1f} ms  p99 {self.pct(99):6.1f} ms  errors {self.errors}"
        )


def load(
    port: int, headers: dict[str, str], path: str, expect: bytes, clients: int, seconds: float, name: str
) -> Run:
    """`clients` threads, each on its own keep-alive connection, asking for `path` until time is up."""
    run = Run(name)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        mine: list[float] = []
        errors = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            http.get(path)  # connected and warm before the clock starts
            start.wait()
            while (began := time.perf_counter()) < stop_at[0]:
                response = http.get(path)
                if response.status_code == 200 and expect in response.content:
                    mine.append(time.perf_counter() - began)
                else:
                    errors += 1
        with lock:
            run.latencies += mine
            run.errors += errors

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds + 1e9  # set for real once everyone is connected
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - began
    return run


def paired(
    http: httpx.Client, path: str, baseline: str, rounds: int, expect: bytes = b""
) -> tuple[Run, Run, int]:
    """`path` and `baseline` asked in turn, one request at a time on one keep-alive connection,
    `rounds` times each after two of each to warm up: machine noise (the machine is shared) falls
    on both alike. Returns (the page's run, the baseline's run, the page's size in bytes)."""
    page, base = Run(path), Run(baseline)
    size = 0
    for round_ in range(rounds + 2):
        for run, url in ((page, path), (base, baseline)):
            began = time.perf_counter()
            response = http.get(url)
            took = time.perf_counter() - began
            check(response.status_code == 200, f"{url} answered {response.status_code}")
            if run is page:
                check(expect in response.content, f"{url} does not show {expect!r}")
                size = len(response.content)
            if round_ >= 2:
                run.latencies.append(took)
                run.seconds += took
    return page, base, size
