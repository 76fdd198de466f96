"""Back up one agency into one archive file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.archive import ArchiveError
from tenants.backup import BackupError, agency_backup


class Command(BaseCommand):
    help = (
        "Write one archive (tar) holding an agency's schema (pg_dump), its rows in public tables and its "
        "media, with a signed manifest of checksums: a consistent snapshot, taken while the agency is in use."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The agency's slug (the first part of its address).")
        parser.add_argument(
            "--output", type=Path, help="The archive to write (default: <slug>-<UTC time>.postline.tar here)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()

        def say(line: str) -> None:
            if options["verbosity"] > 0:
                self.stdout.write(f"[{time.perf_counter() - started:6.1f} s] {line}")

        try:
            result = agency_backup(slug=options["slug"], output=options["output"], say=say)
        except (BackupError, ArchiveError) as exc:
            raise CommandError(f"No backup was made: {exc}") from exc
        manifest = result.manifest
        rows = sum(table["rows"] for table in manifest["tables"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up “{manifest['agency']['slug']}” to {result.path}: {rows} rows, "
                f"{manifest['media']['objects']} media objects, {result.size:,} bytes "
                f"in {result.seconds:.1f} s."
            )
        )
        if missing := manifest["media"]["missing"]:
            self.stderr.write(
                f"{len(missing)} media object(s) were deleted while the backup ran and are not in it: "
                + ", ".join(missing[:5])
            )
