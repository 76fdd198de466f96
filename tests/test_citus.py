"""Postline on a Citus coordinator: the path past one database (README, "Past one database").

With `CITUS_URL` set to a database on a Citus coordinator (12.1 or newer: the `citus` extension
created there and the worker nodes added), this suite migrates that database, creates an agency
and makes its schema a distributed schema, has a real scheduler and worker publish its posts
through the fake TikTok, and backs the agency up. The database is the suite's own: its public
schema is migrated and the agencies it creates are left there. Without `CITUS_URL` every test is
skipped, saying so; `tests/test_citus_compatibility.py` checks the data model on plain PostgreSQL
in every run.
"""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import dj_database_url
import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections

from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import PostStatus
from tenants.archive import SCHEMA_DUMP
from tenants.backup import agency_backup
from tests.servers import start_process
from tests.test_faults import Bed, agencies, seed, verify, wait_final

CITUS_URL = os.environ.get("CITUS_URL", "")

pytestmark = [
    pytest.mark.skipif(
        not CITUS_URL,
        reason="CITUS_URL is not set: point it at a database on a Citus 12.1+ coordinator "
        "(CREATE EXTENSION citus; workers added) to run the Citus suite",
    ),
    pytest.mark.xdist_group("citus"),
]


def citus_version(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()
    return str(row[0]) if row else None


@pytest.fixture(scope="module")
def coordinator(
    django_db_setup: None, django_db_blocker: Any, broker_namespace: str, tmp_path_factory: Any
) -> Iterator[Bed]:
    """The coordinator's database, migrated, with this test process pointed at it meanwhile; the
    scheduler and workers a test starts use it and the suite's Redis."""
    version = citus_version(CITUS_URL)
    if version is None:
        pytest.fail(
            "CITUS_URL names a database without the citus extension: run CREATE EXTENSION citus there"
        )
    folder = tmp_path_factory.mktemp("citus")
    env = {**os.environ, "DATABASE_URL": CITUS_URL}
    migrate = start_process(["manage.py", "migrate_all", "--verbosity", "0"], env, log=folder / "migrate.log")
    assert migrate.wait(timeout=900) == 0, (folder / "migrate.log").read_text()
    config = dj_database_url.parse(CITUS_URL)
    with django_db_blocker.unblock():
        connections.close_all()
        saved = dict(connection.settings_dict)
        connection.settings_dict.update(
            NAME=config["NAME"],
            HOST=config["HOST"],
            PORT=config["PORT"],
            USER=config["USER"],
            PASSWORD=config["PASSWORD"],
        )
        ContentType.objects.clear_cache()
    redis = SimpleNamespace(url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    bed = Bed(
        pg=cast(Any, None),
        redis=cast(Any, redis),
        folder=folder,
        namespace=broker_namespace,
        blocker=django_db_blocker,
    )
    try:
        yield bed
    finally:
        bed.stop()
        with django_db_blocker.unblock():
            connections.close_all()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
            ContentType.objects.clear_cache()


def distribute(bed: Bed, schema: str) -> None:
    """The agency's schema as a distributed schema: its tables kept together on one worker."""
    with bed.db(), connection.cursor() as cursor:
        cursor.execute("SELECT citus_schema_distribute(%s)", [schema])
        cursor.execute("SELECT count(*) FROM citus_schemas WHERE schema_name = %s::regnamespace", [schema])
        assert cursor.fetchone() == (1,), f"{schema} is not a distributed schema"


def test_an_agency_in_a_distributed_schema_publishes_and_is_backed_up(
    coordinator: Bed, tiktok: FakeTikTok, tmp_path: Path
) -> None:
    # Given an agency created on the coordinator, its schema distributed, and posts due now
    tiktok.configure(daily_post_cap=10_000)
    [agency] = agencies(coordinator, "citus", 1)
    distribute(coordinator, agency.schema_name)
    seeded = seed(coordinator, tiktok, [agency], 4, "citus", due_in=0.0)

    # When a scheduler and workers run against the coordinator
    began = time.monotonic()
    coordinator.start(tiktok)
    recovery = wait_final(coordinator, seeded, since=began, limit=180)

    # Then every post went out once
    counts = verify(coordinator, tiktok, seeded, "an agency in a Citus distributed schema", recovery)
    assert counts == {PostStatus.PUBLISHED: len(seeded)}, counts

    # And the agency's backup holds its schema and its posts
    with coordinator.db():
        result = agency_backup(slug=agency.slug, output=tmp_path / "citus.postline.tar")
    assert result.manifest["tables"]["posts_post"]["rows"] == len(seeded), result.manifest["tables"]
    with tarfile.open(result.path) as archive:
        dump = archive.getmember(SCHEMA_DUMP)
        assert dump.size > 0
    tiktok.configure(daily_post_cap=15)
