"""Provisioning benchmark: time per new agency schema, by migrating vs by cloning.

    python -m bench.provisioning [--agencies N]

Creates N schemas each way in the configured database, prints the figures and their
ratio, then drops everything it made.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import django


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django.setup()

    from django.db import connection, transaction
    from django.db.migrations.loader import MigrationLoader

    from tenants import provisioning
    from tenants.models import Agency
    from tenants.services import agency_create

    provisioning.base_schema_prepare()
    migrations = len(MigrationLoader(connection).disk_migrations)
    run = f"{os.getpid()}"
    made_schemas: list[str] = []

    def timed(action, name: str) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        action(name)
        made_schemas.append(name)
        return time.perf_counter() - start

    def clone(name: str) -> None:
        with transaction.atomic():
            provisioning.schema_clone(name)

    try:
        # One warm-up of each path so imports and first-use caches are not measured.
        timed(provisioning.schema_migrate, f"bench_warm_m_{run}")
        timed(clone, f"bench_warm_c_{run}")
        migrate_times = [
            timed(provisioning.schema_migrate, f"bench_m{i}_{run}") for i in range(args.agencies)
        ]
        clone_times = [timed(clone, f"bench_c{i}_{run}") for i in range(args.agencies)]
        full_times = []
        for i in range(args.agencies):
            start = time.perf_counter()
            agency = agency_create(
                slug=f"bench-{i}-{run}",
                name=f"Bench {i}",
                owner_email=f"owner{i}@bench.example",
                owner_password=f"bench-{run}-password-long-enough",
            )
            full_times.append(time.perf_counter() - start)
            made_schemas.append(agency.schema_name)
    finally:
        with connection.cursor() as cursor:
            for schema in made_schemas:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        Agency.objects.filter(slug__startswith="bench-", slug__endswith=f"-{run}").delete()

    m, c, f = statistics.median(migrate_times), statistics.median(clone_times), statistics.median(full_times)
    print(f"Provisioning, {args.agencies} agencies each way, {migrations} migrations (median per agency):")
    print(f"  migrate every migration : {m * 1000:8.0f} ms")
    print(f"  clone the base schema   : {c * 1000:8.0f} ms")
    print(f"  full agency_create      : {f * 1000:8.0f} ms  (row, domain, clone, owner, real password hash)")
    print(f"  migrate / clone ratio   : {m / c:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
