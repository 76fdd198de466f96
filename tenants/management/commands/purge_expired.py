"""Remove soft-deleted rows past their retention, with their media, in every agency."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Agency
from tenants.retention import agency_purge_expired, purge_expired_agencies, retention_policy


class Command(BaseCommand):
    help = (
        "Remove for good the rows deleted longer ago than their model's retention (RETENTION_DAYS), "
        "with what depends on them and their media; print what was (or would be) removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be removed; remove nothing."
        )
        parser.add_argument("--agency", metavar="SLUG", help="Only this agency.")

    def handle(self, *args: Any, **options: Any) -> None:
        policy = retention_policy()
        if not policy:
            self.stdout.write("RETENTION_DAYS is empty: everything is kept.")
            return
        self.stdout.write(
            "Retention: " + ", ".join(f"{model._meta.label_lower} {days} days" for model, days in policy)
        )
        if options["agency"]:
            agencies = list(Agency.objects.filter(slug=options["agency"]))
            if not agencies:
                raise CommandError(f"There is no agency “{options['agency']}”.")
        else:
            agencies = purge_expired_agencies()
        dry_run = options["dry_run"]
        touched = 0
        for agency in agencies:
            report = agency_purge_expired(agency=agency, dry_run=dry_run)
            if report.anything:
                touched += 1
                self.stdout.write(report.describe(dry_run=dry_run))
                if dry_run and options["verbosity"] > 1:
                    for name in report.media:
                        self.stdout.write(f"  media {name}")
        self.stdout.write(
            f"{len(agencies)} agencies looked at, {touched} with expired rows"
            + (" (dry run: nothing was removed)." if dry_run else ".")
        )
