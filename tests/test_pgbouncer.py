"""PgBouncer: session pooling is supported, transaction pooling is refused at start-up.

A real PgBouncer (Debian's `pgbouncer`, installed by .ci/run) in front of the test database,
once per pooling mode; the web application, the worker and the scheduler are started through
it as production starts them (apps/common/database.py says why transaction pooling is refused).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.browser.conftest import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
REFUSAL = "shares server sessions between clients"

pytestmark = pytest.mark.skipif(
    not Path(PGBOUNCER).is_file(), reason="needs Debian's pgbouncer (apt-get install pgbouncer; .ci/run does)"
)


def pgbouncer(mode: str) -> Iterator[str]:
    """A PgBouncer in `mode` in front of the test database; yields its DATABASE_URL."""
    db = connection.settings_dict
    port = free_port()
    # Readable by the user it runs as (it refuses to run as root).
    folder = Path(tempfile.mkdtemp(prefix="postline-pgbouncer-"))
    folder.chmod(0o755)
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']}"
        + (f" password={db['PASSWORD']}" if db["PASSWORD"] else "")
        + "\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\n"
        f"pool_mode = {mode}\ndefault_pool_size = 4\nmax_client_conn = 50\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    ini.chmod(0o644)
    as_root = os.geteuid() == 0
    process = subprocess.Popen(
        [PGBOUNCER, str(ini)],
        user="postgres" if as_root else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"postgres://{db['USER']}@127.0.0.1:{port}/{db['NAME']}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def transaction_pooler(django_db_setup: None) -> Iterator[str]:
    yield from pgbouncer("transaction")


@pytest.fixture
def session_pooler(django_db_setup: None) -> Iterator[str]:
    yield from pgbouncer("session")


def start(database_url: str, *command: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_behind_pgbouncer_in_transaction_mode_web_worker_and_scheduler_refuse_to_start(
    transaction_pooler: str,
) -> None:
    for command in (
        ("-c", "import config.wsgi"),  # what gunicorn loads
        ("-c", "import config.worker"),  # what each Dramatiq worker process loads
        ("manage.py", "run_scheduler"),
    ):
        started = start(transaction_pooler, *command)
        assert started.returncode != 0, command
        assert REFUSAL in started.stderr, (command, started.stderr[-2000:])
        assert "pool_mode = session" in started.stderr


def test_behind_pgbouncer_in_session_mode_everything_starts_and_is_ready(session_pooler: str) -> None:
    for command in (("-c", "import config.wsgi"), ("-c", "import config.worker")):
        started = start(session_pooler, *command)
        assert started.returncode == 0, (command, started.stderr[-2000:])
    ready = start(session_pooler, "manage.py", "healthcheck")
    assert ready.returncode == 0, ready.stderr[-2000:]
    assert "database=ok" in ready.stdout and "migrations=ok" in ready.stdout
