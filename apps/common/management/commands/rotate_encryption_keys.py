"""Re-encrypt every stored secret, in every agency, with the first key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.common.crypto import DecryptionError
from apps.common.key_rotation import rotate_current_schema
from tenants.models import Agency


class Command(BaseCommand):
    help = (
        "Re-encrypt every token in every agency with the first key of FIELD_ENCRYPTION_KEYS. "
        "Afterwards the other keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        failed = []
        total = 0
        for agency in Agency.objects.order_by("slug"):
            with schema_context(agency.schema_name):
                try:
                    result = rotate_current_schema(agency.schema_name)
                except DecryptionError as exc:
                    failed.append(agency.slug)
                    self.stderr.write(f"{agency.slug}: not rotated, left unchanged: {exc}")
                    continue
            total += result.values
            self.stdout.write(f"{agency.slug}: {result.values} secret(s) re-encrypted")
        if failed:
            raise CommandError(
                f"{len(failed)} agency(ies) could not be rotated ({', '.join(failed)}): "
                "keep the key that encrypted their secrets in FIELD_ENCRYPTION_KEYS and run again."
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {total} secret(s) now use the first key."))
