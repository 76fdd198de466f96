"""Names in SQL (schemas, tables) go through PostgreSQL's identifier quoting."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from apps.common.sql import quote_ident
from tenants.models import Agency, AgencyStatus
from tenants.services import agency_purge

pytestmark = pytest.mark.django_db


def _schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def test_a_schema_name_holding_a_quote_cannot_end_its_identifier() -> None:
    # Given a deleted agency row whose schema name carries SQL (however it got there)
    name = 'gone"; CREATE SCHEMA smuggled_in; --'
    agency = Agency.objects.create(
        slug="gone-agency",
        name="Gone",
        schema_name=name,
        status=AgencyStatus.DELETED,
        deleted_at=timezone.now(),
    )

    # When it is purged
    agency_purge(agency=agency)

    # Then the name was one identifier: nothing else ran
    assert not _schema_exists("smuggled_in")
    assert not Agency.objects.filter(pk=agency.pk).exists()


def test_quote_ident_quotes_like_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(%s) || '.' || quote_ident(%s)", ['a"b', "Posts"])
        assert quote_ident('a"b', "Posts") == cursor.fetchone()[0]
