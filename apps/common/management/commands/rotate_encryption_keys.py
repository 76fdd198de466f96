"""Re-encrypt every stored secret, in every agency, with the first key of FIELD_ENCRYPTION_KEYS,
and say how many values are still under an old key (so whether the old keys can be dropped)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from apps.common.crypto import DecryptionError
from apps.common.key_rotation import key_census_current_schema, rotate_current_schema
from tenants.models import Agency


class Command(BaseCommand):
    help = (
        "Re-encrypt every token in every agency with the first key of FIELD_ENCRYPTION_KEYS, then "
        "report how many are still under an old key. Once none is, the other keys can be removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Only count the values under each key; change nothing."
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        failed = []
        total = old = unreadable = 0
        holding_old: list[str] = []
        for agency in Agency.objects.order_by("slug"):
            with schema_context(agency.schema_name):
                rotated = ""
                if not check:
                    try:
                        result = rotate_current_schema(agency.schema_name)
                    except DecryptionError as exc:
                        failed.append(agency.slug)
                        self.stderr.write(f"{agency.slug}: not rotated, left unchanged: {exc}")
                    else:
                        total += result.values
                        rotated = f"{result.values} secret(s) re-encrypted; "
                census = key_census_current_schema(agency.schema_name)
            old += census.old
            unreadable += census.unreadable
            if census.old:
                holding_old.append(agency.slug)
            line = f"{agency.slug}: {rotated}{census.old} still under an old key"
            if check:
                line = f"{agency.slug}: {census.current} under the first key, {census.old} under an old key"
            if census.unreadable:
                line += f", {census.unreadable} under no listed key"
            self.stdout.write(line)
        remaining = (
            f"{old} secret(s) still under an old key"
            + (
                f" (in {', '.join(holding_old)}): keep the old keys"
                if old
                else ": the old keys can be removed"
            )
            + (f"; {unreadable} under no listed key" if unreadable else "")
            + "."
        )
        if failed:
            raise CommandError(
                f"{len(failed)} agency(ies) could not be rotated ({', '.join(failed)}): "
                "keep the key that encrypted their secrets in FIELD_ENCRYPTION_KEYS and run again. "
                f"{remaining}"
            )
        if check:
            self.stdout.write(remaining)
            return
        self.stdout.write(self.style.SUCCESS(f"Done: {total} secret(s) now use the first key; {remaining}"))
