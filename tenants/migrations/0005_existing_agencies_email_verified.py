"""Agencies that existed before signups had to confirm their owner's address keep working: they
count as confirmed from the day they were made (reversing forgets only those dates)."""

from django.db import migrations
from django.db.models import F


def confirm_existing(apps, schema_editor):  # type: ignore[no-untyped-def]
    Agency = apps.get_model("tenants", "Agency")
    Agency.objects.filter(email_verified_at__isnull=True).update(email_verified_at=F("created_at"))


def forget(apps, schema_editor):  # type: ignore[no-untyped-def]
    Agency = apps.get_model("tenants", "Agency")
    Agency.objects.filter(email_verified_at=F("created_at")).update(email_verified_at=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_agency_email_verification"),
    ]

    operations = [migrations.RunPython(confirm_existing, forget)]
