"""Restore one agency from an archive written by agency_backup."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.restore import RestoreError, agency_restore


class Command(BaseCommand):
    help = (
        "Restore an agency from an agency_backup archive into a fresh schema, under its own slug or "
        "--as NEW_SLUG. The archive is checked whole first; nothing is made when anything is amiss."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The archive agency_backup wrote.")
        parser.add_argument(
            "--as",
            dest="as_slug",
            metavar="NEW_SLUG",
            help="Restore under this slug (a copy beside the original, if it still exists).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()

        def say(line: str) -> None:
            if options["verbosity"] > 0:
                self.stdout.write(f"[{time.perf_counter() - started:6.1f} s] {line}")

        try:
            result = agency_restore(path=options["file"], as_slug=options["as_slug"], say=say)
        except RestoreError as exc:
            raise CommandError(f"Nothing was restored: {exc}") from exc
        agency = result.agency
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored “{agency.slug}” ({agency.status}) at {agency.url}: {result.rows} rows, "
                f"{result.media_objects} media objects ({result.media_bytes:,} bytes) "
                f"in {result.seconds:.1f} s."
            )
        )
        if result.copy_of:
            self.stdout.write(
                f"This is a copy beside “{result.copy_of}”, which keeps its TikTok connections and webhooks: "
                "the copy's accounts need reconnecting, and none of its posts is scheduled."
            )
        if result.posts_unscheduled:
            self.stdout.write(f"{result.posts_unscheduled} scheduled post(s) became drafts, saying why.")
        if result.posts_needing_attention:
            self.stdout.write(
                f"{result.posts_needing_attention} post(s) caught mid-publish need a person "
                "(TikTok may have them)."
            )
