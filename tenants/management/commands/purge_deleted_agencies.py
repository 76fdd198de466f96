"""Drop the schemas of agencies deleted longer ago than the grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from tenants.models import Agency, AgencyStatus
from tenants.services import agency_purge


class Command(BaseCommand):
    help = "Permanently remove agencies deleted more than --days ago (their schema, domains and row)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=settings.AGENCY_DELETION_GRACE_DAYS)
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be removed, remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=options["days"])
        due = Agency.objects.filter(status=AgencyStatus.DELETED, deleted_at__lt=cutoff).order_by("deleted_at")
        for agency in due:
            if options["dry_run"]:
                self.stdout.write(f"would purge {agency.slug} (deleted {agency.deleted_at:%Y-%m-%d})")
                continue
            agency_purge(agency=agency)
            self.stdout.write(f"purged {agency.slug}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(due)} agency(ies) past the {options['days']}-day grace period.")
        )
