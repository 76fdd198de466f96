"""Create a working agency from the command line."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Plan
from tenants.services import agency_create


class Command(BaseCommand):
    help = "Create an agency with its own schema, its domain and its owner, then print its URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The agency's address: <slug>.<PLATFORM_DOMAIN>.")
        parser.add_argument("--name", required=True, help="The agency's display name.")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", required=True)
        parser.add_argument("--owner-name", default="")
        parser.add_argument("--plan", default=Plan.TRIAL, choices=Plan.values)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            agency = agency_create(
                slug=options["slug"],
                name=options["name"],
                owner_email=options["owner_email"],
                owner_password=options["owner_password"],
                owner_name=options["owner_name"],
                plan=options["plan"],
            )
        except ValidationError as exc:
            lines = [
                f"  {field.replace('_', '-')}: {message}"
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
            raise CommandError("The agency was not created:\n" + "\n".join(lines)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created agency “{agency.name}”: {agency.url}"))
