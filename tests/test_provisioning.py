"""New agencies are cloned from the base schema and come out identical to a migrated one."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from apps.audit.models import AuditLog
from apps.users.models import Role, User
from tenants import provisioning
from tenants.models import Agency, Domain
from tenants.services import agency_delete
from tests.conftest import OWNER_PASSWORD, REFERENCE_SCHEMA, client_for, operator_client

pytestmark = pytest.mark.django_db


def test_cloned_schema_equals_a_migrated_one() -> None:
    migrated = provisioning.schema_signature(REFERENCE_SCHEMA)
    cloned = provisioning.schema_signature("alpha")
    for part in migrated:
        missing = sorted(migrated[part] - cloned[part])
        extra = sorted(cloned[part] - migrated[part])
        assert (missing, extra) == ([], []), f"{part} differ: missing {missing[:5]}, extra {extra[:5]}"
    assert len(migrated["tables"]) > 20 and len(migrated["constraints"]) > 50 and migrated["triggers"]


# --- Creating agencies: command, admin, bad input ---


SYSTEM_SCHEMAS = {"public", "information_schema", "pg_catalog"}


def nothing_made(slug: str) -> bool:
    schema = slug.replace("-", "_")
    return (
        not Agency.objects.filter(slug=slug).exists()
        and not Domain.objects.filter(domain=f"{slug}.localhost").exists()
        and (schema in SYSTEM_SCHEMAS or not schema_exists(schema))
    )


def test_create_agency_command_makes_a_working_agency() -> None:
    out = io.StringIO()
    call_command(
        "create_agency",
        "north-star",
        "--name",
        "North Star Media",
        "--owner-email",
        "Boss@NorthStar.example",
        "--owner-password",
        OWNER_PASSWORD,
        stdout=out,
    )
    assert "http://north-star.localhost:8000/" in out.getvalue()
    agency = Agency.objects.get(slug="north-star")
    assert agency.schema_name == "north_star" and agency.status == "active"
    with schema_context(agency.schema_name):
        owner = User.objects.get()
        assert owner.email == "boss@northstar.example" and owner.role == Role.OWNER
        assert AuditLog.objects.filter(action="agency.created").count() == 1
    connection.set_schema_to_public()
    client = client_for(agency)
    response = client.post(
        "/login/", {"username": "boss@northstar.example", "password": OWNER_PASSWORD}, follow=True
    )
    assert b"North Star Media" in response.content and b"boss@northstar.example" in response.content


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("alpha", "already taken"),
        ("public", "reserved"),
        ("www", "reserved"),
        ("admin", "reserved"),
        ("information-schema", "reserved"),
        ("Bad Slug!", "lowercase letters"),
        ("ab", "3 to 40"),
        ("ends-", "not ending with a hyphen"),
        ("pg-catalog", "reserved"),
    ],
)
def test_create_agency_refuses_bad_slugs_clearly(slug: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command(
            "create_agency",
            slug,
            "--name",
            "X",
            "--owner-email",
            "a@b.example",
            "--owner-password",
            OWNER_PASSWORD,
        )
    if slug != "alpha":
        assert nothing_made(slug.lower())
    assert Agency.objects.filter(slug="alpha").count() == 1


def test_create_agency_refuses_bad_owner_details() -> None:
    with pytest.raises(CommandError) as caught:
        call_command(
            "create_agency", "gamma", "--name", " ", "--owner-email", "nope", "--owner-password", "123"
        )
    text = str(caught.value)
    assert "name: Give the agency a name" in text
    assert "owner-email: Enter a valid email" in text
    assert "owner-password: This password is too short" in text
    assert nothing_made("gamma")


def test_failure_after_the_schema_is_cloned_leaves_nothing_behind() -> None:
    # An address that passes email validation but not the user model's 254-character
    # limit fails only once the schema has been cloned and the owner is being saved.
    long_email = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".example"
    with pytest.raises(CommandError, match="254"):
        call_command(
            "create_agency",
            "delta",
            "--name",
            "Delta",
            "--owner-email",
            long_email,
            "--owner-password",
            OWNER_PASSWORD,
        )
    assert nothing_made("delta")


def test_operator_creates_an_agency_from_the_admin() -> None:
    operator = operator_client()
    form = {
        "name": "Echo Studio",
        "slug": "echo",
        "plan": "growth",
        "owner_email": "lead@echo.example",
        "owner_password": OWNER_PASSWORD,
    }

    response = operator.post("/admin/tenants/agency/add/", form, follow=True)

    assert response.status_code == 200
    assert b"was added successfully" in response.content
    agency = Agency.objects.get(slug="echo")
    assert agency.plan == "growth" and agency.domains.get().domain == "echo.localhost"
    site = client_for(agency)
    assert (
        site.post("/login/", {"username": "lead@echo.example", "password": OWNER_PASSWORD}).status_code == 302
    )

    again = operator.post("/admin/tenants/agency/add/", form)
    assert again.status_code == 200
    assert b"already taken" in again.content


def test_operator_admin_lists_agencies_not_agency_data(alpha: Agency) -> None:
    operator = operator_client()
    listing = operator.get("/admin/tenants/agency/")
    assert b"Alpha Agency" in listing.content and b"Beta Agency" in listing.content
    assert operator.get("/admin/posts/post/").status_code == 404


def test_clone_refuses_a_stale_base_schema() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM postline_base.django_migrations "
            "WHERE app = 'audit' AND name = '0003_audit_log_append_only'"
        )
    assert provisioning.pending_migrations("postline_base") == ["audit.0003_audit_log_append_only"]
    with pytest.raises(RuntimeError, match="migrate_all"):
        provisioning.schema_clone("stale_clone")


def test_deleted_agency_is_purged_only_after_the_grace_period(alpha: Agency) -> None:
    agency_delete(agency=alpha)
    call_command("purge_deleted_agencies", stdout=io.StringIO())
    assert schema_exists("alpha")

    Agency.objects.filter(pk=alpha.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    out = io.StringIO()
    call_command("purge_deleted_agencies", stdout=out)
    assert "purged alpha" in out.getvalue()
    assert nothing_made("alpha")
    assert schema_exists("beta")
