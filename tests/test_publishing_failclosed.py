"""Background work fails closed: a message whose agency cannot be chosen, or is not active,
never runs, and nothing it would have done happens anywhere."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_context

from apps.accounts.tasks import accounts_sync_stats
from apps.analytics.models import AccountSnapshot
from apps.fake_tiktok.server import FakeTikTok
from apps.users.models import User
from tenants.dramatiq import SCHEMA_OPTION
from tenants.models import Agency
from tenants.services import agency_suspend
from tests.conftest import process_env, wait_for
from tests.factories import TikTokAccountFactory
from tests.procs.probe_actors import probe_add_member


def dead_letter_ids(queue: str) -> list[str]:
    broker: Any = dramatiq.get_broker()
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.XQ.msgs")
    return [dramatiq.Message.decode(value).message_id for value in raw]


def users_named(email: str, django_db_blocker: Any) -> dict[str, int]:
    """Where a user with this email exists: schema → count, over the public schema and every agency."""
    found: dict[str, int] = {}
    with django_db_blocker.unblock():
        schemas = ["public", *Agency.objects.values_list("schema_name", flat=True)]
        for schema in schemas:
            with schema_context(schema):
                if n := User.objects.filter(email=email).count():
                    found[schema] = n
        connection.set_schema_to_public()
    return found


@pytest.fixture
def probe_worker(broker_namespace: str, fake_tiktok: FakeTikTok) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker for the probe queue whose queries give up on a lock after 0.3 s."""
    env = process_env(fake_tiktok, broker_namespace, PGOPTIONS="-c lock_timeout=300")
    modules = ["config.worker", "tests.procs.probe_actors"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            *modules,
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            "probe",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield process
    process.terminate()
    process.wait(timeout=15)


def test_an_error_while_choosing_the_agency_runs_nothing_until_a_retry_can(
    make_agency: Any, probe_worker: Any, django_db_blocker: Any
) -> None:
    agency = make_agency()
    email = f"probe-{uuid.uuid4().hex[:8]}@agency.example"
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE relation = 'public.tenants_agency'::regclass AND NOT granted"
    )
    with django_db_blocker.unblock(), transaction.atomic(), connection.cursor() as cursor:
        # Given the agency table locked, so the worker's agency check fails (lock timeout)
        cursor.execute("LOCK TABLE public.tenants_agency IN ACCESS EXCLUSIVE MODE")
        probe_add_member.send_with_options(args=(email,), **{SCHEMA_OPTION: agency.schema_name})

        # When the worker's check waits for the lock and gives up
        def count() -> int:
            cursor.execute(waiting)
            return int(cursor.fetchone()[0])

        wait_for(lambda: count() == 1, timeout=30)
        wait_for(lambda: count() == 0, timeout=10)

        # Then the job did not run, in no schema
        assert users_named(email, django_db_blocker) == {}
    # And once the check can succeed, the retry runs the job in its own agency, and only there
    wait_for(lambda: users_named(email, django_db_blocker), timeout=30)
    assert users_named(email, django_db_blocker) == {agency.schema_name: 1}


def test_a_suspended_agencys_jobs_are_refused_and_never_reach_tiktok(
    make_agency: Any, tiktok: FakeTikTok, worker: Any, django_db_blocker: Any
) -> None:
    # Given a suspended agency with a connected account, and an active one
    suspended, active = make_agency(), make_agency()
    accounts = {}
    for agency, open_id in ((suspended, "fake-open-public-001"), (active, "fake-open-private-002")):
        tokens = tiktok.issue_tokens(open_id)
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            accounts[agency.slug] = TikTokAccountFactory(
                open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
            )
    with django_db_blocker.unblock():
        agency_suspend(agency=suspended)

    # When a stats sync is queued for each
    refused = accounts_sync_stats.send_with_options(
        args=(str(accounts[suspended.slug].pk),), **{SCHEMA_OPTION: suspended.schema_name}
    )
    accounts_sync_stats.send_with_options(
        args=(str(accounts[active.slug].pk),), **{SCHEMA_OPTION: active.schema_name}
    )

    # Then the suspended agency's is dead-lettered without calling TikTok or writing anything
    wait_for(lambda: refused.message_id in dead_letter_ids("stats"), timeout=30)
    with django_db_blocker.unblock():
        with schema_context(active.schema_name):
            wait_for(lambda: AccountSnapshot.objects.exists(), timeout=30)
        with schema_context(suspended.schema_name):
            assert not AccountSnapshot.objects.exists()
    callers = {c.get("open_id") for c in tiktok.calls if c["endpoint"] == "user_info"}
    assert "fake-open-public-001" not in callers
