"""Make sure the demo agency exists and print how to sign in to it (development)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from apps.users.models import Role, User
from tenants.models import Agency
from tenants.services import agency_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.example"
OPERATOR_EMAIL = "operator@postline.example"


class Command(BaseCommand):
    help = (
        "Create the demo agency, its owner and a demo operator if missing, and print their credentials "
        "(development only)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials-file",
            required=True,
            help="Where the demo owner's password is kept between runs (git-ignored).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo agency is for development: DEBUG is off.")
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
        self._ensure_operator(password)
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo agency:       {agency.url}\n"
                f"  sign in as {DEMO_EMAIL} with password {password}\n"
                f"Operators' admin:  {settings.SITE_SCHEME}://{settings.PLATFORM_DOMAIN}{port}/admin/\n"
                f"  sign in as {OPERATOR_EMAIL} with password {password}"
            )
        )

    def _ensure_operator(self, password: str) -> None:
        operator = User.all_objects.filter(email=OPERATOR_EMAIL).first()
        if operator is None:
            User.objects.create_superuser(OPERATOR_EMAIL, password, name="Demo Operator")
            return
        if operator.is_deleted:
            operator.restore()
        operator.set_password(password)
        operator.save(update_fields=["password"])
