"""Migrate the public schema, the base schema new agencies are cloned from, and every agency."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants import provisioning


class Command(BaseCommand):
    help = "Migrate the public schema, the base schema and every agency's schema."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        provisioning.base_schema_prepare(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS("All schemas are migrated."))
