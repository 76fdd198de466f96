"""Browser tests: headless Chromium (Debian's package) driven by Playwright, against the real
application served by `runserver` on the test database, with a real worker, the scheduler and
the fake TikTok. Screenshots go to `artifacts/screenshots/` (git-ignored)."""

from __future__ import annotations

import email.policy
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.fake_tiktok.server import FakeTikTok
from tests.conftest import OWNER_PASSWORD, process_env

# Playwright's sync API keeps an event loop in this thread; the ORM calls our tests make
# between page actions are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 860}
# What Django's console email backend writes after each message.
CONSOLE_EMAIL_SEPARATOR = b"-" * 79


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}: apt-get install chromium")
        for item in items:
            if "tests/browser/" in str(item.fspath):
                item.add_marker(skip)


class Stack:
    def __init__(self, port: int, fake: FakeTikTok, env: dict[str, str], outputs: list[Path]) -> None:
        self.port = port
        self.fake = fake
        self.env = env
        self.outputs = outputs

    def url(self, agency: Any | None = None, path: str = "/") -> str:
        host = f"{agency.slug}.localhost" if agency is not None else "localhost"
        return f"http://{host}:{self.port}{path}"

    def emails_to(self, address: str) -> list[EmailMessage]:
        """The emails the web server and the worker have sent to `address` so far, oldest first
        (their console email backend writes each to their output, which the stack keeps in files)."""
        sent = []
        chunks = [
            chunk for output in self.outputs for chunk in output.read_bytes().split(CONSOLE_EMAIL_SEPARATOR)
        ]
        for chunk in chunks:
            start = re.search(rb"^Content-Type:", chunk, re.MULTILINE)  # after any startup lines
            if start is None:
                continue
            message = BytesParser(policy=email.policy.default).parsebytes(chunk[start.start() :])
            if address in str(message.get("To", "")):
                sent.append(message)
        return sent


@pytest.fixture(scope="session")
def stack(
    django_db_setup: None,
    fake_tiktok: FakeTikTok,
    broker_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The web server and a worker, as `make dev` runs them, on the test database.

    They use a broker namespace of their own, and the scheduler only runs in the tests that ask
    for `stack_scheduler`: a dispatcher left running for the whole session would claim the posts
    that other tests in this process schedule and dispatch themselves. The server's standard
    output and the worker's (where their console email backend writes) go to files: see
    `Stack.emails_to`."""
    port = free_port()
    folder = tmp_path_factory.mktemp("stack")
    server_output, worker_output = folder / "runserver.out", folder / "worker.out"
    env = process_env(
        fake_tiktok,
        f"{broker_namespace}-stack",
        SITE_PORT=str(port),
        TIKTOK_AUTH_URL=f"{fake_tiktok.base_url}/v2/auth/authorize/",
        # Photo posts: TikTok (the fake, once a test verifies this prefix) downloads from here.
        TIKTOK_MEDIA_BASE_URL=f"http://localhost:{port}/tiktok-media/",
        DEBUG="true",
    )
    fake_tiktok.webhook_url = f"http://localhost:{port}/webhooks/tiktok/"
    with server_output.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=output,
            stderr=subprocess.DEVNULL,
        )
    with worker_output.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "4"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=output,
            stderr=output,  # Dramatiq's workers write what they print there
        )
    processes = [server, worker]
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start") from None
            time.sleep(0.2)
    yield Stack(port, fake_tiktok, env, [server_output, worker_output])
    fake_tiktok.webhook_url = None
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


@pytest.fixture
def stack_scheduler(stack: Stack) -> Iterator[None]:
    """The scheduler (dispatcher) for the stack, for the length of one test."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler", "--interval", "0.3"],
        env=stack.env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
    )
    yield
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP *.localhost 127.0.0.1",
        ],
    )
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors  # CSP violations show up here
    yield page
    context.close()


def sign_in(
    page: Any,
    stack: Stack,
    agency: Any,
    email: str = "owner@committed.example",
    password: str = OWNER_PASSWORD,
) -> None:
    page.goto(stack.url(agency, "/login/"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url == stack.url(agency, "/"), page.content()[:3000]


def snap(page: Any, name: str) -> None:
    """Save the page at desktop and phone width (a build artifact, not an assertion)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def images_loaded(locator: Any, timeout: float = 15.0) -> list[bool]:
    """For each image the locator matches: whether it loaded with a size, once it has finished
    loading or failing (an image still on its way is waited for, up to `timeout` seconds, not
    counted as broken; a lazy one is asked for at once). Only in a page with JavaScript on: without
    it, the listeners and the timer never run and the call would wait for ever."""
    result: list[bool] = locator.evaluate_all(
        """(els, ms) => Promise.all(els.map(i => {
            if (i.complete) return i.naturalWidth > 0;
            i.loading = 'eager';
            return new Promise(done => {
                i.addEventListener('load', () => done(i.naturalWidth > 0), {once: true});
                i.addEventListener('error', () => done(false), {once: true});
                setTimeout(() => done(i.complete && i.naturalWidth > 0), ms);
            });
        }))""",
        int(timeout * 1000),
    )
    return result
