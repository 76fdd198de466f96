"""The fault suite: publishing keeps going through what production does to it.

One PostgreSQL and one Redis of the suite's own (free ports; they are restarted and killed),
the fake TikTok counting create-post calls, a scheduler and two worker processes whose clocks
are 5 minutes ahead and 5 minutes behind (libfaketime). Each scenario publishes at least 50
posts across several agencies through one fault, then asserts:

- TikTok saw at most one create-post call per post;
- every post is final: published, failed with a reason, or needing a person only when TikTok
  received its create-post call (it may have created it);
- nothing is left unfinished once the printed recovery time is over;
- agencies the fault was not about published every post.

Run it alone with `pytest -m faults -s` (the figures are printed); `make test` runs it too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
import redis
from django.contrib.contenttypes.models import ContentType
from django.db import close_old_connections, connection, connections
from django.utils import timezone
from django_tenants.utils import schema_context
from dramatiq import Message
from dramatiq.brokers.redis import _scripts as redis_scripts

from apps.accounts.models import TikTokAccount
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, Post, PostStatus, PublishAttempt
from apps.posts.services import post_schedule
from apps.publishing.models import DueJob
from apps.tiktok.client import TikTokClient
from apps.tiktok.errors import TikTokError
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import Agency
from tenants.services import agency_create, agency_delete, agency_purge, agency_suspend
from tests.conftest import OWNER_PASSWORD, process_env
from tests.factories import ready_post
from tests.servers import PrivatePostgres, PrivateRedis, faketime_env, kill_group, start_process

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]

CREATORS = {  # open_id → a privacy level it offers
    "fake-open-public-001": "PUBLIC_TO_EVERYONE",
    "fake-open-private-002": "FOLLOWER_OF_CREATOR",
    "fake-open-nocomment-003": "MUTUAL_FOLLOW_FRIENDS",
    "fake-open-nearcap-004": "SELF_ONLY",
}
FINAL = {PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_ATTENTION}
READY = "Worker process is ready for action."  # what a Dramatiq worker logs once it consumes
SKEWS = (300, -300)  # the two workers' clocks: 5 minutes ahead, 5 minutes behind
# Short backoffs keep the suite quick; leases are production's unless a scenario says otherwise.
FAST = {"PUBLISH_PREPARE_BACKOFF": "1,1,2,2,3", "PUBLISH_POLL_BACKOFF": "1,1,1,2,2,3"}
FIGURES: list[str] = []


@dataclass
class Seeded:
    schema: str
    post_id: Any
    caption: str


@dataclass
class Bed:
    """The suite's servers, and the processes of the scenario that is running."""

    pg: PrivatePostgres
    redis: PrivateRedis
    folder: Path
    namespace: str
    blocker: Any
    fake: FakeTikTok | None = None
    processes: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def db(self) -> Iterator[None]:
        """Database access from the test (reconnecting after a restart, like the workers)."""
        with self.blocker.unblock():
            close_old_connections()
            yield

    def start(self, fake: FakeTikTok, **settings: str) -> None:
        """A scheduler and two workers (clocks 5 minutes ahead and behind) with these settings.
        Their logs start empty: what a scenario reads in them is its own."""
        self.fake = fake
        for name in ("scheduler", *(f"worker{n}" for n in range(len(SKEWS)))):
            (self.folder / f"{name}.log").unlink(missing_ok=True)
        with self.db():
            self.env = process_env(
                fake,
                self.namespace,
                REDIS_URL=self.redis.url,
                DRAMATIQ_BROKER_URL=self.redis.url,
                TIKTOK_TIMEOUT_SECONDS="3",
                LOG_LEVEL="INFO",
                **{**FAST, **settings},
            )
        self.start_scheduler()
        for n, skew in enumerate(SKEWS):
            self.start_worker(f"worker{n}", skew)
        self.wait_ready()

    def wait_ready(self, timeout: float = 180) -> None:
        """Until each process says it is running: on a busy machine their start (Django, Dramatiq)
        takes long, and a scenario's clock must start from processes that run, not from their launch."""
        marks = {
            "scheduler": "Scheduler running",
            **{name: READY for name in self.processes if name != "scheduler"},
        }

        def ready() -> bool:
            return all(mark in self.log(name) for name, mark in marks.items() if name in self.processes)

        wait_until(ready, timeout, f"{', '.join(self.processes)} started")

    def start_scheduler(self) -> None:
        argv = ["manage.py", "run_scheduler", "--interval", "0.25"]
        self._start("scheduler", argv, {**self.env, **faketime_env(120)})

    def start_worker(self, name: str, skew: int) -> None:
        argv = ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "3"]
        self._start(name, argv, {**self.env, **faketime_env(skew)})

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.folder / f"{name}.log"
        self.processes[name] = start_process(argv, env, log=log)

    def kill(self, name: str) -> None:
        kill_group(self.processes.pop(name))

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def bed(django_db_setup: None, django_db_blocker: Any, broker_namespace: str) -> Iterator[Bed]:
    """Servers of the suite's own; this test process is pointed at its database meanwhile."""
    pg = PrivatePostgres()
    folder = pg.folder / "run"
    folder.mkdir()
    redis = PrivateRedis(folder)
    saved: dict[str, Any] = {}
    saved_client: Any = None
    try:
        pg.init()
        redis.start()
        with psycopg.connect(pg.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE postline")
        env = {**os.environ, "DATABASE_URL": pg.url("postline"), "REDIS_URL": redis.url}
        migrate = start_process(
            ["manage.py", "migrate_all", "--verbosity", "0"], env, log=folder / "migrate.log"
        )
        assert migrate.wait(timeout=600) == 0, (folder / "migrate.log").read_text()
        with django_db_blocker.unblock():
            connections.close_all()
            saved = dict(connection.settings_dict)
            connection.settings_dict.update(NAME="postline", HOST="127.0.0.1", PORT=pg.port, USER=pg.login)
            ContentType.objects.clear_cache()
        # Messages this process sends (an agency's deletion queues the revocation of its grants)
        # go to the suite's Redis too, where its workers take them.
        saved_client = _point_broker(redis_client_for(redis.url))
        yield Bed(pg=pg, redis=redis, folder=folder, namespace=broker_namespace, blocker=django_db_blocker)
    finally:
        if saved_client is not None:
            _point_broker(saved_client)
        if saved:
            with django_db_blocker.unblock():
                connections.close_all()
                connection.settings_dict.clear()
                connection.settings_dict.update(saved)
                ContentType.objects.clear_cache()
        with contextlib.suppress(Exception):
            redis.kill()
        pg.destroy()
        print("\n" + "\n".join(FIGURES))


def redis_client_for(url: str) -> Any:
    return redis.Redis.from_url(url)


def _point_broker(client: Any) -> Any:
    """Send this process's messages through `client`; returns the client it used before."""
    broker: Any = dramatiq.get_broker()
    previous = broker.client
    broker.client = client
    broker.scripts = {name: client.register_script(script) for name, script in redis_scripts.items()}
    return previous


@pytest.fixture
def crew(bed: Bed, tiktok: FakeTikTok) -> Iterator[Bed]:
    """The bed, with the fake TikTok reset; every process the scenario started is stopped after it."""
    tiktok.configure(daily_post_cap=10_000)
    try:
        yield bed
    finally:
        bed.stop()
        tiktok.clear_faults()
        tiktok.configure(daily_post_cap=15)


# --- Building and reading a scenario ---


def agencies(bed: Bed, tag: str, count: int) -> list[Agency]:
    with bed.db():
        made = [
            agency_create(
                slug=f"{tag}-{n}-{time.monotonic_ns() % 10**6}",
                name=f"{tag} {n}",
                owner_email=f"owner@{tag}.example",
                owner_password=OWNER_PASSWORD,
            )
            for n in range(count)
        ]
        connection.set_schema_to_public()
    return made


def seed(
    bed: Bed,
    fake: FakeTikTok,
    among: list[Agency],
    count: int,
    tag: str,
    *,
    due_in: float | None = 0.0,
    size: int = 300_000,
) -> list[Seeded]:
    """`count` posts spread over `among` and four creators each; scheduled `due_in` seconds from
    now, or left as drafts (None) for `schedule` to schedule later."""
    seeded = []
    with bed.db():
        for n in range(count):
            agency = among[n % len(among)]
            open_id, privacy = list(CREATORS.items())[(n // len(among)) % len(CREATORS)]
            caption = f"{tag} {agency.slug} {n}"
            with schema_context(agency.schema_name):
                post = ready_post(
                    fake,
                    open_id=open_id,
                    size=size,
                    status=PostStatus.DRAFT,
                    scheduled_at=None,
                    schedule_time_zone="",
                    privacy_level=privacy,
                    caption=caption,
                )
            seeded.append(Seeded(agency.schema_name, post.pk, caption))
    if due_in is not None:
        schedule(bed, seeded, due_in)
    return seeded


def schedule(bed: Bed, seeded: list[Seeded], due_in: float = 0.0) -> None:
    """Schedule each post `due_in` seconds from the moment it is scheduled."""
    with bed.db():
        for item in seeded:
            with schema_context(item.schema):
                due = timezone.now() + dt.timedelta(seconds=due_in)
                post = Post.objects.get(pk=item.post_id)
                post_schedule(post=post, scheduled_at=due, time_zone="UTC", by=None)


def posts(bed: Bed, seeded: list[Seeded]) -> list[Post]:
    found: list[Post] = []
    by_schema: dict[str, list[Any]] = {}
    for item in seeded:
        by_schema.setdefault(item.schema, []).append(item.post_id)
    with bed.db():
        for schema, ids in by_schema.items():
            with schema_context(schema):
                found += list(Post.all_objects.filter(pk__in=ids))
    return found


def statuses(bed: Bed, seeded: list[Seeded]) -> Counter[str]:
    return Counter(post.status for post in posts(bed, seeded))


def wait_final(bed: Bed, seeded: list[Seeded], *, since: float, limit: float) -> float:
    """Seconds from `since` (time.monotonic) until every post is final; fails after `limit`."""
    while True:
        counts = statuses(bed, seeded)
        elapsed = time.monotonic() - since
        if set(counts) <= FINAL and sum(counts.values()) == len(seeded):
            return elapsed
        if elapsed > limit:
            raise AssertionError(f"not final {limit:.0f}s after the fault: {dict(counts)}\n{tails(bed)}")
        time.sleep(0.5)


def tails(bed: Bed) -> str:
    return "\n".join(
        f"--- {name}\n" + "\n".join(bed.log(name).splitlines()[-15:])
        for name in ("scheduler", *(f"worker{n}" for n in range(len(SKEWS))))
    )


def verify(
    bed: Bed,
    fake: FakeTikTok,
    seeded: list[Seeded],
    scenario: str,
    recovery: float,
    *,
    bystanders: Sequence[Agency] = (),
) -> Counter[str]:
    """The assertions every scenario shares; records the scenario's figures."""
    mine = {item.caption for item in seeded}
    calls = Counter(str(c.get("title")) for c in fake.create_post_calls() if c.get("title") in mine)
    doubles = {title: n for title, n in calls.items() if n > 1}
    found = posts(bed, seeded)
    counts = Counter(post.status for post in found)
    FIGURES.append(
        f"faults: {scenario}: {len(found)} posts {dict(sorted(counts.items()))}, "
        f"{sum(n - 1 for n in doubles.values())} duplicate create-post calls, recovered in {recovery:.1f}s"
    )
    print(FIGURES[-1])
    assert not doubles, doubles
    assert len(found) == len(seeded)
    for post in found:
        assert post.status in FINAL, (post.caption, post.status)
        if post.status == PostStatus.FAILED:
            assert post.last_error_message, post.caption
        if post.status == PostStatus.NEEDS_ATTENTION:
            # Only when TikTok may really have created it: its create-post call reached TikTok, or a
            # worker died with the call in flight (init_outcome_unknown: the attempt was committed and
            # never answered, so whether the bytes left cannot be known and a person decides).
            assert calls[post.caption] == 1 or post.last_error_code == "init_outcome_unknown", (
                post.caption,
                post.last_error_code,
                post.last_error_message,
            )
            assert post.last_error_message
    schemas = {agency.schema_name for agency in bystanders}
    for post in found:
        schema = next(item.schema for item in seeded if item.post_id == post.pk)
        if schema in schemas:
            assert post.status == PostStatus.PUBLISHED, (post.caption, post.status, post.last_error_message)
    with bed.db():
        left = DueJob.objects.filter(post_id__in=[item.post_id for item in seeded], kind="publish")
        assert not left.exists(), list(left.values_list("schema_name", "due_at", "leased_until"))
    return counts


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


# --- Scenarios ---


def test_a_restart_keeps_every_commit_the_database_reported(bed: Bed) -> None:
    # Given rows committed one at a time, the last ones just before PostgreSQL is killed
    url = bed.pg.url("postline")
    with psycopg.connect(url, autocommit=True) as probe:
        probe.execute("CREATE TABLE durability_probe (n integer)")
        for n in range(300):
            probe.execute("INSERT INTO durability_probe VALUES (%s)", [n])
    bed.pg.restart()

    # Then every one survives, as in production: a post reported published stays published
    with psycopg.connect(url, autocommit=True) as probe:
        row = probe.execute("SELECT count(*) FROM durability_probe").fetchone()
        probe.execute("DROP TABLE durability_probe")
    assert row is not None and row[0] == 300


def test_database_restart_while_workers_idle(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given workers whose every thread has used its connection, now idle
    among = agencies(crew, "pgrestart", 3)
    warm = seed(crew, tiktok, among, 9, "warm")
    later = seed(crew, tiktok, among, 50, "pgrestart", due_in=None)
    crew.start(tiktok)
    wait_final(crew, warm, since=time.monotonic(), limit=90)

    # When PostgreSQL restarts (every connection cut) and 50 posts fall due afterwards
    crew.pg.restart(down_for=3)
    back = time.monotonic()
    schedule(crew, later)

    # Then they are all published within seconds of the restart, by the same processes
    recovery = wait_final(crew, later, since=back, limit=60)
    counts = verify(
        crew, tiktok, later + warm, "PostgreSQL restart, workers idle", recovery, bystanders=among
    )
    assert counts[PostStatus.PUBLISHED] == len(later) + len(warm)


def test_redis_down_between_creator_info_and_init(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given 50 posts due now, whose first creator_info answers come slowly
    among = agencies(crew, "redisgap", 3)
    bystanders = agencies(crew, "redisgap-by", 1)
    seeded = seed(crew, tiktok, among + bystanders, 50, "redisgap", due_in=2)
    tiktok.add_fault("creator_info", "slow", count=6, delay=3.0)
    # (messages Redis loses come back when their lease expires: issue 18's short lease)
    crew.start(tiktok, PUBLISH_LEASE_SECONDS="10", POLL_LEASE_SECONDS="10")

    # When Redis goes down while workers wait for creator_info, so that our rate limit cannot be
    # asked before init, and comes back 5 s later
    def waiting() -> bool:
        return sum(1 for c in tiktok.calls if c["endpoint"] == "creator_info" and c["status"] == 0) >= 4

    wait_until(waiting, 90, "workers waiting in creator_info")
    crew.redis.restart(down_for=5)
    back = time.monotonic()

    # Then no post is handed to a person unless TikTok got its create-post call: the others retry
    recovery = wait_final(crew, seeded, since=back, limit=90)
    counts = verify(
        crew, tiktok, seeded, "Redis down between creator_info and init", recovery, bystanders=bystanders
    )
    with crew.db():
        held_back = 0
        for item in seeded:
            with schema_context(item.schema):
                held_back += PublishAttempt.objects.filter(
                    post_id=item.post_id, kind=AttemptKind.INIT, error_code="rate_limiter_unavailable"
                ).count()
    print(f"faults: {held_back} init call(s) held back while Redis was down")
    assert counts[PostStatus.PUBLISHED] >= 44


def test_clock_skew_decides_nothing(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given 50 posts due in a few seconds, a third of creator_info answers failing (retried after
    # 1-3 s), and the workers' clocks 5 minutes ahead and behind
    among = agencies(crew, "skew", 3)
    tiktok.add_fault("creator_info", "http_5xx", rate=0.3)
    crew.start(tiktok)
    seeded = seed(crew, tiktok, among, 50, "skew", due_in=4)
    due = {post.caption: post.scheduled_at.timestamp() for post in posts(crew, seeded)}

    # Then every post goes out within seconds of its time, and each retry waits its backoff
    recovery = wait_final(crew, seeded, since=time.monotonic(), limit=90)
    counts = verify(crew, tiktok, seeded, "worker clocks 5 min ahead and behind", recovery, bystanders=among)
    assert counts[PostStatus.PUBLISHED] == len(seeded)
    inits = {str(c["title"]): float(c["time"]) for c in tiktok.create_post_calls()}
    late = max(inits[item.caption] - due[item.caption] for item in seeded)
    gaps: list[float] = []
    with crew.db():
        for item in seeded:
            with schema_context(item.schema):
                tries = list(
                    PublishAttempt.objects.filter(post_id=item.post_id, kind=AttemptKind.CREATOR_INFO)
                    .order_by("started_at")
                    .values_list("started_at", "outcome")
                )
            gaps += [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(tries)]
    print(
        f"faults: latest post went out {late:.1f}s after its time; {len(gaps)} retries, shortest gap "
        f"{min(gaps, default=0):.2f}s"
    )
    assert late < 45
    assert gaps and min(gaps) >= 0.9


def _lost_messages(
    crew: Bed, tiktok: FakeTikTok, tag: str, fault: Callable[[], None]
) -> tuple[float, list[Seeded]]:
    """50 posts due now with production leases; `fault` strikes once some are on their way.
    Returns the seconds from the fault until every post was final, and the posts."""
    among = agencies(crew, tag, 3)
    seeded = seed(crew, tiktok, among, 50, tag, due_in=None)
    tiktok.add_fault("upload", "slow", rate=1.0, delay=0.5)  # keep some posts in flight
    crew.start(tiktok)  # production leases
    schedule(crew, seeded)
    wait_until(lambda: len(tiktok.create_post_calls()) >= 8, 90, "publishing under way")
    fault()
    struck = time.monotonic()
    # Issue 18 asks for under 60 s; waiting a little longer shows how far off a failure is.
    recovery = wait_final(crew, seeded, since=struck, limit=75)
    return recovery, seeded


def test_recovery_after_a_redis_restart_with_production_settings(crew: Bed, tiktok: FakeTikTok) -> None:
    # When Redis is down for 10 s mid-publishing (every queued message lost), with production leases
    recovery, seeded = _lost_messages(crew, tiktok, "redisrestart", lambda: crew.redis.restart(down_for=10))
    # Then every post is final within 60 s of the outage
    verify(crew, tiktok, seeded, "Redis restart (10 s down), production leases", recovery)
    assert recovery < 60


def test_recovery_after_a_sigkilled_worker_with_production_settings(crew: Bed, tiktok: FakeTikTok) -> None:
    # When a worker is SIGKILLed mid-publishing (its messages lost) and started again
    def kill() -> None:
        crew.kill("worker0")
        crew.start_worker("worker0", SKEWS[0])

    recovery, seeded = _lost_messages(crew, tiktok, "sigkill", kill)
    # Then every post is final within 60 s of the kill
    verify(crew, tiktok, seeded, "worker SIGKILLed, production leases", recovery)
    assert recovery < 60


def _raw_message(bed: Bed, queue: str, data: bytes, message_id: str) -> None:
    """Put bytes in a queue exactly as the Redis broker stores a message."""
    client = redis.Redis.from_url(bed.redis.url)
    client.hset(f"{bed.namespace}:{queue}.msgs", message_id, data)
    client.rpush(f"{bed.namespace}:{queue}", message_id)


def _queue_state(bed: Bed, client: redis.Redis, queue: str) -> str:
    """What a queue holds and who took it, with the end of each process's log (a failure's story)."""
    ns = bed.namespace
    lines = [f"left in {queue}.msgs:"]
    for key, data in client.hgetall(f"{ns}:{queue}.msgs").items():
        try:
            message = Message.decode(data)
            lines.append(f"  {key.decode()}: {message.actor_name}{message.args} {message.options}")
        except Exception:  # the unreadable one is listed as bytes
            lines.append(f"  {key.decode()}: {data[:40]!r}")
    lines.append(f"queued: {[v.decode() for v in client.lrange(f'{ns}:{queue}', 0, -1)]}")
    for key in client.keys(f"{ns}:__acks__.*"):
        lines.append(f"{key.decode()}: {sorted(v.decode() for v in client.smembers(key))}")
    lines.append(f"heartbeats: {client.zrange(f'{ns}:__heartbeats__', 0, -1, withscores=True)}")
    for name in bed.processes:
        lines.append(f"--- {name} log (end) ---\n" + "\n".join(bed.log(name).splitlines()[-40:]))
    return "\n".join(lines)


def _message(actor: str, args: tuple[Any, ...], schema: str | None, message_id: str) -> bytes:
    options: dict[str, Any] = {"redis_message_id": message_id}
    if schema is not None:
        options[SCHEMA_OPTION] = schema
    return Message(queue_name="publish", actor_name=actor, args=args, kwargs={}, options=options).encode()


def test_poison_and_stale_messages(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given running workers, 40 posts due now and 10 due in a minute, and in the publish queue: an
    # early publish message for each of the 10, a message for an unknown actor and one that is not a
    # message at all (the workers start first: on a busy machine their start takes long)
    among = agencies(crew, "poison", 3)
    crew.start(tiktok)
    now_posts = seed(crew, tiktok, among, 40, "poison-now", due_in=None)
    ahead = seed(crew, tiktok, among, 10, "poison-ahead", due_in=60)
    for n, item in enumerate(ahead):
        data = _message("publishing_publish", (str(item.post_id),), item.schema, f"early-{n}")
        _raw_message(crew, "publish", data, f"early-{n}")
    _raw_message(
        crew, "publish", _message("no_such_actor", (), among[0].schema_name, "unknown-1"), "unknown-1"
    )
    _raw_message(crew, "publish", b"\xff\x00 not a message", "garbage-1")

    # When the workers have taken every one of them
    client = redis.Redis.from_url(crew.redis.url)
    injected = {f"early-{n}" for n in range(len(ahead))} | {"unknown-1", "garbage-1"}
    schemas = {agency.schema_name for agency in among}

    def ours_left() -> bool:
        """Whether a message of this scenario is still in the queue. An earlier scenario's worker,
        SIGKILLed, may leave its own messages there until the broker's heartbeat timeout gives
        them back: those are not this scenario's to wait for."""
        for key, data in client.hgetall(f"{crew.namespace}:publish.msgs").items():
            if key.decode() in injected:
                return True
            with contextlib.suppress(Exception):
                if Message.decode(data).options.get(SCHEMA_OPTION) in schemas:
                    return True
        return False

    try:
        wait_until(lambda: not ours_left(), 45, "the queued messages taken")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_queue_state(crew, client, 'publish')}") from None

    # Then the early messages changed nothing, and the unreadable ones are dead letters
    with crew.db():
        for item in ahead:
            with schema_context(item.schema):
                assert Post.objects.get(pk=item.post_id).status == PostStatus.SCHEDULED
            job = DueJob.objects.filter(post_id=item.post_id, kind="publish").first()
            assert job is not None and job.leased_until is None, item.caption
    dead = client.hkeys(f"{crew.namespace}:publish.XQ.msgs")
    assert {b"unknown-1", b"garbage-1"} <= set(dead), dead

    # And the posts due now go out at once, and those due later on time
    schedule(crew, now_posts)
    recovery = wait_final(crew, now_posts, since=time.monotonic(), limit=60)
    wait_final(crew, ahead, since=time.monotonic(), limit=90)
    seeded = now_posts + ahead
    verify(crew, tiktok, seeded, "early, unknown-actor and unreadable messages", recovery, bystanders=among)
    scheduled = {post.caption: post.scheduled_at.timestamp() for post in posts(crew, seeded)}
    inits = {str(c["title"]): float(c["time"]) for c in tiktok.create_post_calls()}
    lateness = {caption: inits[caption] - due for caption, due in scheduled.items()}
    late = max(lateness[item.caption] for item in ahead)
    print(
        f"faults: the posts due later went out at most {late:.1f}s after their time (those due at "
        f"once, 40 together: {max(lateness[item.caption] for item in now_posts):.1f}s)"
    )
    assert late < 20


def test_agency_purged_while_its_jobs_are_queued(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given 50 posts of three agencies due now, and an agency with 16 posts due now and 4 next week
    among = agencies(crew, "purge", 3)
    [victim] = agencies(crew, "purged", 1)
    seeded = seed(crew, tiktok, among, 50, "purge", due_in=None)
    doomed = seed(crew, tiktok, [victim], 16, "purged", due_in=None)
    later = seed(crew, tiktok, [victim], 4, "purged-later", due_in=7 * 86400)
    crew.start(tiktok)

    # When that agency is deleted and purged while its jobs are due and its messages queued
    schedule(crew, doomed + seeded)
    with crew.db():
        agency_purge(agency=agency_delete(agency=Agency.objects.get(pk=victim.pk)))
    struck = time.monotonic()

    # Then the other agencies publish everything, and nothing of the purged one is left behind
    recovery = wait_final(crew, seeded, since=struck, limit=90)
    verify(crew, tiktok, seeded, "agency purged with due jobs", recovery, bystanders=among)
    with crew.db():
        assert not DueJob.objects.filter(schema_name=victim.schema_name).exists()
    assert "Scheduler tick failed" not in crew.log("scheduler")
    assert len(later) == 4


def test_suspended_and_deleted_agencies_do_nothing_in_the_background(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given 50 posts of three active agencies, and a suspended and a deleted agency with due posts
    among = agencies(crew, "active", 3)
    suspended, deleted = agencies(crew, "inactive", 2)
    seeded = seed(crew, tiktok, among, 50, "active", due_in=None)
    idle = seed(crew, tiktok, [suspended, deleted], 16, "inactive", due_in=0)
    with crew.db():
        tokens = set()
        for agency in (suspended, deleted):
            with schema_context(agency.schema_name):
                tokens |= {a.access_token.reveal() for a in TikTokAccount.objects.all()}
        with schema_context(deleted.schema_name):
            deleted_token = TikTokAccount.objects.earliest("created_at").access_token.reveal()
        agency_suspend(agency=Agency.objects.get(pk=suspended.pk))
        agency_delete(agency=Agency.objects.get(pk=deleted.pk))
        connection.set_schema_to_public()
    shas = {hashlib.sha256(token.encode()).hexdigest() for token in tokens}
    sent_before = len(tiktok.calls)
    crew.start(tiktok)
    schedule(crew, seeded)

    # Then the active agencies publish everything, and TikTok hears nothing with the others' tokens
    recovery = wait_final(crew, seeded, since=time.monotonic(), limit=90)
    verify(crew, tiktok, seeded, "suspended and deleted agencies alongside", recovery, bystanders=among)
    theirs = [
        c for c in tiktok.calls[sent_before:] if c["access_token_sha"] in shas and c["endpoint"] != "revoke"
    ]
    assert not theirs, theirs
    assert not any(post.status == PostStatus.PUBLISHED for post in posts(crew, idle))
    # And the deleted agency's tokens (wiped here) no longer work at TikTok
    client = TikTokClient(limiter=None)

    def revoked() -> bool:
        try:
            client.creator_info(access_token=deleted_token)
        except TikTokError as exc:
            return exc.code == "access_token_invalid"
        return False

    wait_until(revoked, 30, "the deleted agency's tokens revoked at TikTok")
    with crew.db(), schema_context(deleted.schema_name):
        assert not TikTokAccount.all_objects.exclude(access_token="").exists()


LONG_UPLOAD_LEASE = 8


def said_of_leases(lines: list[str]) -> list[str]:
    """What the workers logged about their leases (late renewals, slow statements, lost leases):
    why a job was handed over, when one was."""
    return [line for line in lines if "lease" in line and "Publishing post" not in line][:20]


def test_long_uploads_keep_their_lease(crew: Bed, tiktok: FakeTikTok) -> None:
    # Given an 8 s lease, and 4 of 50 posts of 20 MB that TikTok receives at 1.1 s a MB: each of their
    # two 10 MB chunks streams for about 11 s, longer than the lease, and their uploads take 22 s
    among = agencies(crew, "upload", 3)
    seeded = seed(crew, tiktok, among, 46, "upload", due_in=None)
    big = seed(crew, tiktok, among, 4, "upload-big", due_in=None, size=20_000_000)
    tiktok.add_fault("upload", "slow_receive", delay=1.1)
    # (a lease is renewed every quarter of it, so a worker or database stalled for three quarters
    # loses it, as it should: with a 4 s lease, stalls of 3 s while the whole suite loaded both cores
    # handed jobs over. The status polls that follow keep their usual lease.)
    crew.start(tiktok, PUBLISH_LEASE_SECONDS=str(LONG_UPLOAD_LEASE))
    schedule(crew, big + seeded)

    # Then every upload finishes in the worker that started it, and every post is published
    recovery = wait_final(crew, seeded + big, since=time.monotonic(), limit=150)
    counts = verify(crew, tiktok, seeded + big, "uploads longer than the lease", recovery, bystanders=among)
    assert counts[PostStatus.PUBLISHED] == 50
    workers = [line for name in ("worker0", "worker1") for line in crew.log(name).splitlines()]
    # (the dispatcher says so when it takes a job from a worker that stopped renewing its lease)
    handed_over = [line for line in crew.log("scheduler").splitlines() if "to another worker" in line]
    restarted = [line for line in workers if "Publishing post" in line and "(start 1)" not in line]
    lost = [line for line in workers if "Stopped publishing" in line]
    # Messages the dispatcher sent again while the first waited in the queue longer than the lease:
    # whichever comes second changes nothing.
    redundant = sum(
        "is being published by another worker" in line
        or "ignored: the post is not waiting" in line
        or "another worker is checking it" in line
        for line in workers
    )
    late = sum("after the last renewal" in line for line in workers)
    chunks: list[float] = []
    uploads: list[float] = []
    with crew.db():
        for item in big:
            with schema_context(item.schema):
                times = list(
                    PublishAttempt.objects.filter(post_id=item.post_id, kind=AttemptKind.UPLOAD).values_list(
                        "started_at", "finished_at"
                    )
                )
            # (an upload attempt left unfinished: its run stopped in the middle of a chunk)
            assert all(end is not None for _, end in times), (
                item.caption,
                times,
                lost,
                said_of_leases(workers),
            )
            chunks += [(end - begin).total_seconds() for begin, end in times]
            uploads.append((max(end for _, end in times) - min(begin for begin, _ in times)).total_seconds())
    print(
        f"faults: {LONG_UPLOAD_LEASE} s leases held through chunks of up to {max(chunks):.1f}s and uploads "
        f"of up to {max(uploads):.1f}s: {late} late renewals, {len(handed_over)} hand-overs, "
        f"{len(restarted)} restarted uploads, "
        f"{len(lost)} runs stopped for a lost lease; {redundant} copies of messages sent while the first "
        "waited changed nothing"
    )
    assert min(chunks) > LONG_UPLOAD_LEASE  # each of the big posts' chunks outlived the lease
    assert not handed_over, (handed_over[:5], said_of_leases(workers))
    assert not restarted and not lost, ((restarted + lost)[:5], said_of_leases(workers))
