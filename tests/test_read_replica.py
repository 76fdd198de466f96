"""Heavy reads on a PostgreSQL streaming replica (tenants/replicas.py), against a real one.

The module starts a primary of its own (a copy of the test database: the agencies and their
schemas) and a hot standby made from it with `pg_basebackup`, both from the PostgreSQL binaries
scripts/services.py finds, and points this process at them: the default connection at the
primary, the `replica` alias at the standby. Replication lag is made by pausing the standby's
replay, as a busy or distant replica would fall behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.analytics.models import AccountSnapshot
from tenants import replicas
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import AccountSnapshotFactory, TikTokAccountFactory
from tests.servers import PrivatePostgres

BEHIND = "behind the latest changes"


@dataclass
class Pair:
    primary: PrivatePostgres
    replica: PrivatePostgres

    def on(self, server: PrivatePostgres, sql: str) -> Any:
        with psycopg.connect(server.url("postline"), autocommit=True) as conn:
            return conn.execute(sql).fetchone()

    def caught_up(self, timeout: float = 20.0) -> None:
        """Wait until the replica has replayed everything the primary has written so far."""
        (position,) = self.on(self.primary, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while not self.on(self.replica, f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn")[0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


def _copy_test_database(primary: PrivatePostgres) -> None:
    """The test database (public schema, reference schema, agencies alpha and beta) into the primary."""
    source = connection.settings_dict
    env = {"PGPASSWORD": source.get("PASSWORD") or ""}
    where = ["-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432), "-U", source["USER"]]
    dump = subprocess.run(
        [str(primary.bindir / "pg_dump"), "--no-owner", "--no-privileges", *where, source["NAME"]],
        capture_output=True,
        check=True,
        env=env,
    )
    with psycopg.connect(primary.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE postline")
    subprocess.run(
        [str(primary.bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", primary.url("postline")],
        input=dump.stdout,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def pair(django_db_setup: None, django_db_blocker: Any) -> Iterator[Pair]:
    primary, replica = PrivatePostgres(), PrivatePostgres()
    saved: dict[str, Any] = {}
    try:
        primary.init()
        with django_db_blocker.unblock():
            _copy_test_database(primary)
        # The standby: a base backup of the primary that then streams from it (-R).
        backup = [
            str(primary.bindir / "pg_basebackup"),
            "-D",
            str(replica.data),
            "-X",
            "stream",
            "-R",
            "-c",
            "fast",
        ]
        replica._run([*backup, "-h", "127.0.0.1", "-p", str(primary.port), "-U", primary.login])
        replica.start()
        with django_db_blocker.unblock():
            connections.close_all()
            saved = dict(connection.settings_dict)
            connection.settings_dict.update(
                NAME="postline", HOST="127.0.0.1", PORT=primary.port, USER=primary.login, PASSWORD=""
            )
            settings.DATABASES[replicas.REPLICA] = {**connection.settings_dict, "PORT": replica.port}
            ContentType.objects.clear_cache()
        yield Pair(primary, replica)
    finally:
        with django_db_blocker.unblock():
            connections.close_all()
            settings.DATABASES.pop(replicas.REPLICA, None)
            with contextlib.suppress(AttributeError):
                del connections[replicas.REPLICA]
            if saved:
                connection.settings_dict.clear()
                connection.settings_dict.update(saved)
            ContentType.objects.clear_cache()
        replica.destroy()
        primary.destroy()


def followers_shown(html: str) -> str:
    found = re.search(r"<dt>Followers</dt><dd>([\d,]+)</dd>", html)
    assert found, "the page shows no follower total"
    return found.group(1)


def analytics_page(client: Client, account: TikTokAccount) -> str:
    response = client.get("/analytics/", {"account": str(account.pk)})
    assert response.status_code == 200
    return response.content.decode()


def test_analytics_read_from_the_replica_in_the_agency_schema_and_from_the_primary_when_it_lags(
    pair: Pair, django_db_blocker: Any, settings: Any
) -> None:
    settings.DATABASE_REPLICA_MAX_LAG = 4
    today = timezone.now().date()
    with django_db_blocker.unblock():
        alpha = Agency.objects.get(slug="alpha")
        with schema_context(alpha.schema_name):
            # Given an account of agency alpha with a month of snapshots, 10,000 followers today
            account = TikTokAccountFactory(username="replica.bakery")
            for days_ago in range(30):
                AccountSnapshotFactory(
                    account=account, date=today - dt.timedelta(days=days_ago), followers=10_000 - days_ago
                )
        client = client_for(alpha)
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
        pair.caught_up()

        # When the replica keeps up, the page's figures come from it, in alpha's schema
        replica = connections[replicas.REPLICA]
        with CaptureQueriesContext(replica) as on_replica:
            page = analytics_page(client, account)
        assert followers_shown(page) == "10,000" and BEHIND not in page
        snapshot_reads = [
            q["sql"] for q in on_replica.captured_queries if "analytics_accountsnapshot" in q["sql"]
        ]
        assert snapshot_reads, "the snapshots were not read on the replica"
        with replica.cursor() as cursor:
            cursor.execute("SHOW search_path")
            assert alpha.schema_name in cursor.fetchone()[0]

        # And an object read there is saved on the primary (the replica is read-only)
        with schema_context(alpha.schema_name):
            snapshot = AccountSnapshot.objects.using(replicas.REPLICA).get(account=account, date=today)
            snapshot.followers = 10_050
            snapshot.save(update_fields=["followers"])
            on_primary = AccountSnapshot.objects.using("default").get(account=account, date=today)
        assert on_primary.followers == 10_050

        # When the replica falls behind (its replay paused after it caught up with that save)
        pair.caught_up()
        pair.on(pair.replica, "SELECT pg_wal_replay_pause()")
        with schema_context(alpha.schema_name):
            AccountSnapshot.objects.filter(account=account, date=today).update(followers=10_100)
        # Then for a while the page shows what the replica has, and says it may be behind
        time.sleep(1.2)
        page = analytics_page(client, account)
        assert followers_shown(page) == "10,050" and BEHIND in page
        # And once it is further behind than DATABASE_REPLICA_MAX_LAG, the primary's current figures
        time.sleep(3.2)
        page = analytics_page(client, account)
        assert followers_shown(page) == "10,100" and BEHIND not in page

        # When it replays again it is used again, current
        pair.on(pair.replica, "SELECT pg_wal_replay_resume()")
        pair.caught_up()
        with CaptureQueriesContext(replica) as on_replica:
            page = analytics_page(client, account)
        assert followers_shown(page) == "10,100" and BEHIND not in page
        assert any("analytics_accountsnapshot" in q["sql"] for q in on_replica.captured_queries)

        # When the replica is down, the page still works, from the primary
        pair.replica.stop("immediate")
        try:
            with schema_context(alpha.schema_name):
                AccountSnapshot.objects.filter(account=account, date=today).update(followers=10_200)
            page = analytics_page(client, account)
            assert followers_shown(page) == "10,200" and BEHIND not in page
        finally:
            replicas._down_until = 0.0
            pair.replica.start()
