"""Many agencies: one migration across all of them, a run with nothing to do, a connection's memory.

    python -m bench.agencies [--agencies 100,1000] [--keep-schemas]

Creates that many agencies (cloned schemas) in the configured database, in steps, and at
each step times `migrate_all`'s agency pass (tenants.schema_migrations) applying a new
nullable column and then a run with nothing pending. At the first step it also times
django-tenants' own per-schema path (`migrate_schemas --schema`, what `migrate_all` used to
run) doing the same: the baseline, in the same run. Prints per-agency costs, the ratios,
and the extrapolation to 10,000 agencies. At the last step one connection serves every
agency in turn, as a worker thread does, and the PostgreSQL backend's memory is printed
against a fresh connection's, with and without recycling connections by the schemas they
served (tenants/postgresql_backend). Then it drops everything it made.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import django

PREFIX = "bench_mig_"
PROBE_OWNER = "owner@bench-agencies.example"
PROBE_PASSWORD = "Plum-Harbour-Lantern-42"  # noqa: S105  (a throwaway agency's, removed at the end)


def _clone_range(names: list[str]) -> None:
    from django.db import connections, transaction

    from tenants import provisioning

    connections.close_all()
    for name in names:
        with transaction.atomic():
            provisioning.schema_clone(name)
    connections.close_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", default=os.environ.get("BENCH_MIGRATION_AGENCIES", "100,1000"))
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument(
        "--keep-schemas",
        action="store_true",
        help="leave the agencies' schemas in place at the end, for a database of its own that is "
        "dropped whole afterwards (dropping 10,000 schemas one by one takes longer than the run)",
    )
    args = parser.parse_args()
    steps = sorted(int(n) for n in args.agencies.split(","))

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django.setup()

    from django.core.management import call_command
    from django.db import connection, connections, migrations, models

    from apps.common.sql import quote_ident
    from tenants import provisioning, schema_migrations
    from tenants.models import Agency
    from tests.migration_probe import extra_migration

    provisioning.base_schema_prepare()
    base = provisioning.base_schema_name()
    run = os.getpid()
    names: list[str] = []
    changes: list[str] = []

    def grow(to: int) -> float:
        started = time.perf_counter()
        new = [f"{PREFIX}{run}_{i:05d}" for i in range(len(names), to)]
        Agency.objects.bulk_create(
            Agency(slug=name.replace("_", "-"), schema_name=name, name=name) for name in new
        )
        connections.close_all()
        # Two processes clone at once (the clone is the subject of bench.provisioning, not this).
        with ProcessPoolExecutor(2, mp_context=get_context("fork")) as pool:
            list(pool.map(_clone_range, [new[i::2] for i in range(2)]))
        names.extend(new)
        return time.perf_counter() - started

    def change(column: str):  # type: ignore[no-untyped-def]
        changes.append(column)
        field = migrations.AddField("post", column, models.TextField(null=True))
        return extra_migration(f"9{len(changes):03d}_{column}", [field])

    def ours() -> float:
        report = schema_migrations.migrate_schemas(names, base=base, processes=args.processes)
        if report.failed:
            raise RuntimeError(f"migrating failed: {report.failed[:3]}")
        ways = Counter(outcome.way or "nothing pending" for outcome in report.migrated)
        each = sorted(outcome.seconds for outcome in report.migrated) or [0.0]
        print(
            f"migrations:   {report.current} current, {dict(ways)}; per agency median "
            f"{1000 * each[len(each) // 2]:.1f} ms, slowest {1000 * each[-1]:.0f} ms",
            flush=True,
        )
        return report.seconds

    def theirs() -> float:
        started = time.perf_counter()
        for name in names:
            call_command(
                "migrate_schemas", schema_name=name, interactive=False, verbosity=0, stdout=io.StringIO()
            )
        connection.set_schema_to_public()
        return time.perf_counter() - started

    def backend_memory() -> int:
        """The private memory of this connection's PostgreSQL backend, in bytes."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")
            return int(cursor.fetchone()[0])

    def serve_every_agency(recycle: bool) -> tuple[int, int]:
        """(fresh backend's memory, memory after serving every agency), the way a worker does."""
        from django.conf import settings
        from django.db import close_old_connections

        from apps.posts.models import Post
        from apps.users.models import User

        connection.settings_dict["CONN_MAX_AGE"] = 3600  # only the schema count may recycle
        settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION = 100 if recycle else 10**9
        connection.close()
        connection.set_schema_to_public()
        fresh = backend_memory()
        for name in names:
            connection.set_schema(name)
            list(Post.objects.filter(status="scheduled").order_by("-scheduled_at")[:20])
            User.objects.filter(is_active=True).count()
            connection.set_schema_to_public()
            close_old_connections()  # between two messages
        return fresh, backend_memory()

    def page_and_tick() -> tuple[float, float]:
        """(median ms of the dashboard of one agency, median ms of a dispatcher tick with nothing due),
        on a kept connection as gunicorn's and the workers' threads keep theirs (config/gunicorn.py:
        300 s); without, every request would pay a fresh backend's catalog caches."""
        from django.test import Client

        from apps.publishing.dispatcher import dispatch_due

        kept = connection.settings_dict["CONN_MAX_AGE"]
        connection.settings_dict["CONN_MAX_AGE"] = 300
        client = Client(HTTP_HOST=probe.primary_host, secure=True)
        signed = client.post("/login/", {"username": PROBE_OWNER, "password": PROBE_PASSWORD})
        if signed.status_code != 302:
            raise RuntimeError(f"sign-in answered {signed.status_code}")
        pages, ticks = [], []
        for _ in range(31):
            started = time.perf_counter()
            if client.get("/").status_code != 200:
                raise RuntimeError("the dashboard did not answer 200")
            pages.append(time.perf_counter() - started)
            started = time.perf_counter()
            dispatch_due()
            ticks.append(time.perf_counter() - started)
        connection.set_schema_to_public()
        connection.settings_dict["CONN_MAX_AGE"] = kept
        connection.close()
        return 1000 * sorted(pages)[15], 1000 * sorted(ticks)[15]

    from tenants.services import agency_create

    probe = agency_create(
        slug=f"bench-probe-{run}", name="Bench probe", owner_email=PROBE_OWNER, owner_password=PROBE_PASSWORD
    )
    figures: dict[int, dict[str, float]] = {}
    memory: list[str] = []
    pages: dict[int, tuple[float, float]] = {}
    try:
        for step in steps:
            made = grow(step)
            print(f"migrations: {step} agencies ready ({made:.0f} s to create)", flush=True)
            row = figures[step] = {}
            if step == steps[0]:
                with change("bench_old"):
                    provisioning.base_schema_prepare()
                    row["old change"] = theirs()
                    row["old no-op"] = theirs()
            with change(f"bench_{step}"):
                provisioning.base_schema_prepare()
                row["change"] = ours()
                row["no-op"] = ours()
            for what, seconds in row.items():
                each = 1000 * seconds / step
                print(
                    f"migrations: {step} agencies, {what}: {seconds:.2f} s ({each:.1f} ms per agency)",
                    flush=True,
                )
            pages[step] = page_and_tick()
            print(
                f"agencies: with {step} agencies, the dashboard takes {pages[step][0]:.1f} ms, "
                f"a dispatcher tick {pages[step][1]:.2f} ms (medians)",
                flush=True,
            )
            for recycle in (False, True):
                fresh, served = serve_every_agency(recycle)
                how = "recycled every 100 schemas" if recycle else "never recycled"
                memory.append(
                    f"connections: backend memory after one connection served {len(names)} agencies, "
                    f"{how}: {served / 2**20:.1f} MiB, "
                    f"{served / fresh:.1f}x a fresh connection's ({fresh / 2**20:.1f} MiB)"
                )
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            for name in [] if args.keep_schemas else names:
                cursor.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
            for column in changes:
                cursor.execute(f"ALTER TABLE {quote_ident(base)}.posts_post DROP COLUMN IF EXISTS {column}")
                cursor.execute(
                    f"DELETE FROM {quote_ident(base)}.django_migrations WHERE name LIKE %s",  # noqa: S608
                    [f"%_{column}"],
                )
        if not args.keep_schemas:
            Agency.objects.filter(schema_name__in=names).delete()
        from tenants.services import agency_delete, agency_purge

        agency_purge(agency=agency_delete(agency=Agency.objects.get(pk=probe.pk)))

    first, last = steps[0], steps[-1]
    for line in memory:
        print(line)
    if last != first:
        page, tick = pages[last][0] / pages[first][0], pages[last][1] / pages[first][1]
        print(
            f"agencies: at {last} vs {first} agencies, the dashboard takes {page:.2f}x, "
            f"a dispatcher tick {tick:.2f}x (goal: within 1.2x)"
        )
    per = {step: {what: s / step for what, s in row.items()} for step, row in figures.items()}
    a, z = per[first], per[last]
    print(
        f"migrations: at {first} agencies, one change costs {a['change'] / a['old change']:.3f} of "
        f"django-tenants' per-schema migrate, a no-op run {a['no-op'] / a['old no-op']:.3f}"
    )
    if last != first:
        print(
            f"migrations: per-agency cost at {last} vs {first} agencies: change "
            f"{z['change'] / a['change']:.2f}x, no-op {z['no-op'] / a['no-op']:.2f}x "
            "(1.00 = flat in the number of agencies)"
        )
    print(
        f"migrations: extrapolated to 10,000 agencies: one change {z['change'] * 10_000 / 60:.1f} min "
        f"(goal 10), a no-op run {z['no-op'] * 10_000:.0f} s (goal 60)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
