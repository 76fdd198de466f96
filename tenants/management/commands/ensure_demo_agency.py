"""Make sure the demo agency exists and print how to sign in to it (development)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import schema_context

from apps.users.models import Role, User
from tenants.models import Agency
from tenants.services import agency_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.example"


class Command(BaseCommand):
    help = "Create the demo agency and its owner if missing, and print the owner's credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials-file",
            required=True,
            help="Where the demo owner's password is kept between runs (git-ignored).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["credentials_file"])
        if path.exists():
            password = path.read_text().strip()
        else:
            password = f"demo-{secrets.token_urlsafe(9)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password)
            path.chmod(0o600)
        agency = Agency.objects.filter(slug=DEMO_SLUG).first()
        if agency is None:
            agency = agency_create(
                slug=DEMO_SLUG,
                name="Demo Agency",
                owner_email=DEMO_EMAIL,
                owner_password=password,
                owner_name="Demo Owner",
            )
        else:
            with schema_context(agency.schema_name):
                owner = User.all_objects.filter(email=DEMO_EMAIL).first()
                if owner is None:
                    owner = User.objects.create_superuser(DEMO_EMAIL, password, role=Role.OWNER)
                elif owner.is_deleted:
                    owner.restore()
                owner.set_password(password)
                owner.save(update_fields=["password"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo agency: {agency.url}\n  sign in as {DEMO_EMAIL} with password {password}"
            )
        )
