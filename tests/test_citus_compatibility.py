"""The data model stays compatible with Citus schema-based sharding (see README, "Past one database").

Each agency's schema can become a distributed schema (all its tables on one node, moved as
one) only while nothing in it points at another agency's schema, and public tables point at
no agency's; public tables that agency tables point at must be made reference tables (copied
to every node). Read from the catalog, so a migration that breaks this fails here.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tenants import provisioning

pytestmark = pytest.mark.django_db

# Public tables an agency's tables may refer to; each is a Citus reference table. Empty today:
# agency tables refer to their own schema only.
REFERENCE_TABLES: set[str] = set()


def foreign_keys() -> list[tuple[str, str, str, str, str]]:
    """(constraint, from schema, from table, to schema, to table) for every foreign key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.conname, sn.nspname, s.relname, dn.nspname, d.relname FROM pg_constraint k "
            "JOIN pg_class s ON s.oid = k.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace "
            "JOIN pg_class d ON d.oid = k.confrelid JOIN pg_namespace dn ON dn.oid = d.relnamespace "
            "WHERE k.contype = 'f'"
        )
        return cursor.fetchall()


def test_no_foreign_key_crosses_from_one_agency_to_another_or_from_public_to_an_agency() -> None:
    agencies = {"alpha", "beta", provisioning.base_schema_name()}
    keys = foreign_keys()
    assert any(source in agencies for _, source, *_ in keys), "no agency foreign keys found at all"
    crossing = [
        key
        for key in keys
        if key[1] in agencies and key[3] != key[1] and not (key[3] == "public" and key[4] in REFERENCE_TABLES)
    ]
    assert not crossing, f"agency tables referring outside their schema: {crossing}"
    into_agencies = [key for key in keys if key[1] == "public" and key[3] in agencies]
    assert not into_agencies, f"public tables referring to an agency's: {into_agencies}"


def test_agency_functions_and_defaults_name_no_other_schema() -> None:
    # A trigger function or column default naming a schema would tie one agency to another's node
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'alpha'"
        )
        functions = cursor.fetchall()
        cursor.execute(
            "SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
            "JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE n.nspname = 'alpha'"
        )
        defaults = cursor.fetchall()
    others = ("beta.", provisioning.base_schema_name() + ".", "public.")
    assert functions, "the agency schema has its trigger functions"
    for name, definition in functions:
        body = definition.split(" AS ", 1)[-1]
        assert not any(other in body for other in others), f"{name} names another schema: {body}"
    for table, column, expression in defaults:
        assert not any(other in expression for other in others), f"{table}.{column} default: {expression}"
