"""Test setup: one test database per worker holding two agencies, cloned the fast way,
and one schema built by running every migration, to compare them. Each test runs in a
transaction that is rolled back."""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from apps.fake_tiktok.server import FakeTikTok
from apps.mfa.middleware import MFA_SESSION_KEY
from apps.users.models import User
from tenants import provisioning
from tenants.models import Agency
from tenants.services import agency_create

OWNER_PASSWORD = "a-long-test-password-42"
REFERENCE_SCHEMA = "reference_migrated"


def pytest_configure() -> None:
    # Fast hashing: the suite signs in often; production hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Uploaded files go to a folder of this run's own (storage objects cache it: set once).
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="postline-media-"))
    if settings.MEDIA_STORAGE == "s3":
        _s3_for_this_run()


def _s3_for_this_run() -> None:
    """The object store `make test` found or started (scripts/services.py finds or starts it
    here too when the suite runs without it), and a bucket of this process's own: parallel
    runs and test workers have agencies of the same names, so they must not share one.
    Processes the tests start inherit it through the environment."""
    if not os.environ.get("S3_ENDPOINT_URL"):
        spec = importlib.util.spec_from_file_location(
            "services", settings.BASE_DIR / "scripts" / "services.py"
        )
        assert spec is not None and spec.loader is not None
        services = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(services)
        os.environ.update(services.s3_env())
    os.environ["S3_BUCKET"] = f"postline-test-{uuid.uuid4().hex[:12]}"
    settings.S3_ENDPOINT_URL = os.environ["S3_ENDPOINT_URL"]
    settings.S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID", settings.S3_ACCESS_KEY_ID)
    settings.S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY", settings.S3_SECRET_ACCESS_KEY)
    settings.S3_BUCKET = os.environ["S3_BUCKET"]


def pytest_unconfigure() -> None:
    if getattr(settings, "MEDIA_STORAGE", "") != "s3" or not settings.S3_BUCKET.startswith("postline-test-"):
        return
    from django.core.files.storage import default_storage

    client = default_storage.client  # type: ignore[attr-defined]
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.S3_BUCKET):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=settings.S3_BUCKET, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=settings.S3_BUCKET)
    except Exception as exc:  # a store already gone
        if "NoSuchBucket" not in str(exc):  # no test of this process stored anything
            print(f"test bucket {settings.S3_BUCKET} not removed: {exc}")


@pytest.fixture(scope="session")
def django_db_setup(  # type: ignore[no-untyped-def]
    request, django_test_environment, django_db_blocker, django_db_modify_db_settings
):
    """The test database, always: also for tests that commit (threads, worker processes) and so
    carry no django_db mark (pytest-django's own fixture would then skip making it)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        databases = setup_databases(verbosity=0, interactive=False, keepdb=False, aliases={"default"})
        assert connection.settings_dict["NAME"].startswith("test_")
        provisioning.base_schema_prepare()
        provisioning.schema_migrate(REFERENCE_SCHEMA)
        for slug, name in (("alpha", "Alpha Agency"), ("beta", "Beta Agency")):
            agency_create(
                slug=slug, name=name, owner_email="owner@shared.example", owner_password=OWNER_PASSWORD
            )
        connection.set_schema_to_public()
    yield
    with django_db_blocker.unblock():
        # A test that cuts the database's connections may have cut this process's too: start afresh.
        connection.close()
        connection.set_schema_to_public()
        with connection.cursor() as cursor:  # processes the tests started may linger a moment
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(databases, verbosity=0)


@pytest.fixture(autouse=True)
def _public_schema_between_tests() -> Iterator[None]:
    yield
    connection.set_schema_to_public()


@pytest.fixture
def alpha(db: None) -> Agency:
    return Agency.objects.get(slug="alpha")


@pytest.fixture
def beta(db: None) -> Agency:
    return Agency.objects.get(slug="beta")


@pytest.fixture
def in_alpha(alpha: Agency) -> Iterator[Agency]:
    with schema_context(alpha.schema_name):
        yield alpha


def client_for(agency: Agency | None) -> Client:
    host = agency.primary_host if agency is not None else settings.PLATFORM_DOMAIN
    return Client(HTTP_HOST=host)


def two_step_verified(client: Client, user: Any) -> Client:
    """Sign `user` in on `client` as if they had given their password and a code: an authenticator
    is set up for them (if they have none) and the session holds it as verified."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=True
    )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.pop(MFA_SESSION_KEY, None)
    session.save()
    return client


def totp_for_step(key: bytes, step: int) -> str:
    """The 6-digit code an authenticator app shows for time step `step` (RFC 6238: HOTP of the step)."""
    return f"{hotp(key, step):06d}"


def totp_from_secret(secret: str) -> str:
    """The code an app shows now for a secret as the set-up page prints it (base32 in groups)."""
    key = base64.b32decode("".join(secret.split()).upper() + "=" * (-len("".join(secret.split())) % 8))
    return totp_for_step(key, int(time.time()) // 30)


def totp_next(user: Any) -> str:
    """A code the user's authenticator accepts now and has not used: the step after the last used
    one (django-otp accepts one step either side of its clock, and each step once)."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return totp_for_step(device.bin_key, device.last_t + 1)


def operator_client(email: str = "operator@postline.example") -> Client:
    """An operator signed in on the root domain's admin, with two steps (operators must)."""
    return two_step_verified(client_for(None), User.objects.create_superuser(email, OWNER_PASSWORD))


# --- TikTok: the fake over a real socket, committed agencies, a real worker ---


@pytest.fixture(scope="session")
def fake_tiktok() -> Iterator[FakeTikTok]:
    fake = FakeTikTok(
        client_key=settings.TIKTOK_CLIENT_KEY,
        client_secret=settings.TIKTOK_CLIENT_SECRET,
        processing_seconds=0.3,
        publicly_available_seconds=0.6,
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def tiktok(fake_tiktok: FakeTikTok, settings: Any) -> Iterator[FakeTikTok]:
    """The fake TikTok, reset, with the app pointed at it."""
    fake_tiktok.reset()
    settings.TIKTOK_API_BASE_URL = fake_tiktok.base_url
    settings.TIKTOK_AUTH_URL = f"{fake_tiktok.base_url}/v2/auth/authorize/"
    yield fake_tiktok
    fake_tiktok.clear_faults()


@pytest.fixture(scope="session")
def broker_namespace() -> str:
    """A Redis namespace of this test process's own, so parallel runs never share queues."""
    namespace = f"postline-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    dramatiq.get_broker().namespace = namespace  # type: ignore[attr-defined]
    return namespace


@pytest.fixture(autouse=True)
def _no_throttle_counts() -> Iterator[None]:
    """Rate-limit counters live in Redis, outside the test's transaction: each test starts with none
    of this database's."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"*:throttle:{connection.settings_dict['NAME']}:*"

    def clear() -> None:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture
def jobs(broker_namespace: str) -> Iterator[Any]:
    """Run, here and now, the jobs queued on a queue of this test process ("web", "team"): in the
    agency each message names, inside the test's transaction (so they see its data and Django's
    test mailbox). Returns how many ran."""
    broker = dramatiq.get_broker()
    for queue in ("web", "team"):
        broker.flush(queue)

    def run(queue: str) -> int:
        consumer = broker.consume(queue, timeout=50)
        ran = 0
        try:
            while (message := next(consumer)) is not None:
                schema = message.options.get("tenant_schema") or "public"
                with schema_context(schema):
                    broker.get_actor(message.actor_name).fn(*message.args, **message.kwargs)
                consumer.ack(message)
                ran += 1
        finally:
            consumer.close()
        return ran

    yield run
    for queue in ("web", "team"):
        broker.flush(queue)


@pytest.fixture
def make_agency(django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """Make fresh agencies whose data is committed (seen by other threads and processes);
    they are dropped, schema and all, after the test."""
    from tenants.services import agency_delete, agency_purge

    made: list[Agency] = []

    def make() -> Agency:
        with django_db_blocker.unblock():
            agency = agency_create(
                slug=f"c-{uuid.uuid4().hex[:10]}",
                name="Committed Agency",
                owner_email="owner@committed.example",
                owner_password=OWNER_PASSWORD,
            )
            connection.set_schema_to_public()
        made.append(agency)
        return agency

    yield make
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        for agency in made:
            if (current := Agency.objects.filter(pk=agency.pk).first()) is not None:  # (a test may purge)
                agency_purge(agency=agency_delete(agency=current))


@pytest.fixture
def worker(broker_namespace: str, fake_tiktok: FakeTikTok) -> Iterator[subprocess.Popen[bytes]]:
    """A real Dramatiq worker process on this test database, talking to the fake TikTok."""
    env = process_env(fake_tiktok, broker_namespace)
    process = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "2"],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(condition: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; fail with a clear message when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def media_root() -> Path:
    """This run's media folder (worker processes are pointed at it too)."""
    return Path(settings.MEDIA_ROOT)


def process_env(fake: FakeTikTok, namespace: str, **extra: str) -> dict[str, str]:
    """Environment for a worker or scheduler process on this test database."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DRAMATIQ_NAMESPACE": namespace,
        "TIKTOK_API_BASE_URL": fake.base_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_LEVEL": "WARNING",
        "PUBLISH_PREPARE_BACKOFF": "1,1,2,2,3",
        "PUBLISH_POLL_BACKOFF": "1,1,1,2,2,3",
        "TIKTOK_RATE_LIMIT_RETRY_SECONDS": "2",
        "STATS_SYNC_SPREAD_SECONDS": "0",  # the daily snapshots at once (tests wait for them)
        "PASSWORD_HASHERS": ",".join(settings.PASSWORD_HASHERS),
        **extra,
    }


@pytest.fixture
def scheduler(broker_namespace: str, fake_tiktok: FakeTikTok) -> Iterator[subprocess.Popen[bytes]]:
    """The real scheduler process (dispatcher every 0.2 s) on this test database."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"],
        env=process_env(fake_tiktok, broker_namespace),
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    process.wait(timeout=15)


# --- Mail: a real SMTP server in the test process ---


class SMTPServer:
    """aiosmtpd on a free port; `messages` are the emails it received, parsed."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]


def mail_text(message: email.message.EmailMessage) -> str:
    """The plain-text body of an email as its reader gets it (transfer encoding undone)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


def mail_to(message: email.message.EmailMessage) -> list[str]:
    """The addresses an email's To header names."""
    return [address.addr_spec for address in message["To"].addresses]


@pytest.fixture(scope="session")
def _smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_server(_smtp: SMTPServer, settings: Any) -> SMTPServer:
    """A real SMTP server; this test's mail goes to it over a socket (and it starts empty)."""
    _smtp.messages.clear()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": _smtp.port, "timeout": 10},
        }
    }
    return _smtp
