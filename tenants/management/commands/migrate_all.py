"""Migrate the public schema, the base schema new agencies are cloned from, and every agency.

The agencies' schemas go through `tenants.schema_migrations`: only those behind are touched,
each at a cost that does not grow with the number of agencies, several at once. A run that
fails at an agency (or is stopped) is resumed by running it again.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import provisioning, schema_migrations


class Command(BaseCommand):
    help = "Migrate the public schema, the base schema and every agency's schema."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="Agencies migrated at once (default: one per CPU).",
        )
        parser.add_argument(
            "--progress-every",
            type=float,
            default=5.0,
            help="Seconds between progress lines (default 5).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        # The base schema first: agencies created from now on are cloned current.
        provisioning.base_schema_prepare(verbosity=verbosity)
        schemas = schema_migrations.agency_schemas()
        last = [0.0]

        def progress(done: int, total: int, seconds: float) -> None:
            if verbosity and (done == total or time.monotonic() - last[0] >= options["progress_every"]):
                last[0] = time.monotonic()
                self.stdout.write(schema_migrations.describe_progress(done, total, seconds))

        report = schema_migrations.migrate_schemas(
            schemas,
            base=provisioning.base_schema_name(),
            processes=options["processes"],
            progress=progress,
        )
        if verbosity:
            self.stdout.write(
                f"{len(schemas)} agencies: {report.current} already current, {len(report.migrated)} "
                f"migrated, {len(report.failed)} failed, in {report.seconds:.1f} s."
            )
            if verbosity > 1:
                for outcome in report.migrated:
                    self.stdout.write(f"  {outcome.schema}: {', '.join(outcome.applied)}")
        for schema in report.missing:
            self.stderr.write(f"Schema {schema} has no migrations table; it was left alone.")
        if report.failed:
            for outcome in report.failed:
                self.stderr.write(f"{outcome.schema}: {outcome.error}")
            raise CommandError(
                f"{len(report.failed)} agencies could not be migrated (above). Fix the cause and run "
                "`manage.py migrate_all` again: it resumes with what is still pending."
            )
        self.stdout.write(self.style.SUCCESS("All schemas are migrated."))
