"""`migrate_all` brings every agency up to date, skips those that are, and resumes after a failure."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, migrations, models, transaction

from apps.common.sql import quote_ident
from tenants import provisioning, schema_migrations
from tests.migration_probe import extra_migration

ADD_COLUMN = [migrations.AddField("post", "probe_note", models.TextField(null=True))]
NEW_MODEL = [
    migrations.CreateModel(
        "ProbeThing",
        [("id", models.BigAutoField(primary_key=True)), ("label", models.CharField(max_length=20))],
    )
]


@pytest.fixture
def committed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Database access outside a test transaction: migrations run in processes of their own."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        yield
        connection.set_schema_to_public()


@pytest.fixture
def schemas(committed: None) -> Iterator[list[str]]:
    """A base schema and three agencies' schemas cloned from it, dropped afterwards."""
    names = ["probe_base", "probe_a", "probe_b", "probe_c"]
    with transaction.atomic(), connection.cursor() as cursor:
        for name in names:
            provisioning._copy_schema(cursor, provisioning.base_schema_name(), name)
    yield names
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")


def columns(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0",
            [f"{quote_ident(schema)}.posts_post"],
        )
        return {row[0] for row in cursor.fetchall()}


def rows(schema: str, query: str) -> set[tuple[str, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query.format(schema=quote_ident(schema)))
        return set(cursor.fetchall())


def test_only_agencies_behind_are_migrated_in_parallel(schemas: list[str]) -> None:
    base, *agencies = schemas
    with extra_migration("9001_probe_note", ADD_COLUMN) as key:
        provisioning.schema_migrate(base)  # the base schema goes first, the usual way
        report = schema_migrations.migrate_schemas(agencies, base=base, processes=2)
        again = schema_migrations.migrate_schemas(agencies, base=base, processes=2)

    assert sorted(o.schema for o in report.migrated) == sorted(agencies)
    assert all(o.applied == [f"{key[0]}.{key[1]}"] for o in report.migrated), report.migrated
    assert not report.failed and report.current == 0
    for schema in agencies:
        assert "probe_note" in columns(schema)
        assert key in rows(schema, "SELECT app, name FROM {schema}.django_migrations")
    # A second run finds nothing to do and touches nothing
    assert (again.current, again.migrated, again.failed) == (3, [], [])


def test_a_failing_agency_stops_no_other_and_a_second_run_resumes(schemas: list[str]) -> None:
    base, broken, *others = schemas
    with connection.cursor() as cursor:  # someone added the column by hand in one agency
        cursor.execute(f"ALTER TABLE {quote_ident(broken)}.posts_post ADD COLUMN probe_note integer")
    with extra_migration("9001_probe_note", ADD_COLUMN):
        provisioning.schema_migrate(base)
        first = schema_migrations.migrate_schemas([broken, *others], base=base, processes=1)
        [failed] = first.failed
        assert failed.schema == broken and "probe_note" in failed.error
        assert sorted(o.schema for o in first.migrated) == sorted(others)

        with connection.cursor() as cursor:  # the operator fixes the cause
            cursor.execute(f"ALTER TABLE {quote_ident(broken)}.posts_post DROP COLUMN probe_note")
        second = schema_migrations.migrate_schemas([broken, *others], base=base, processes=1)
    assert [o.schema for o in second.migrated] == [broken] and second.current == 2
    assert "probe_note" in columns(broken)


def test_new_models_bring_their_content_types_and_permissions(schemas: list[str]) -> None:
    base, *agencies = schemas
    query = (
        "SELECT t.app_label, t.model, p.codename FROM {schema}.auth_permission p "
        "JOIN {schema}.django_content_type t ON t.id = p.content_type_id WHERE t.model = 'probething'"
    )
    with extra_migration("9002_probe_thing", NEW_MODEL):
        provisioning.schema_migrate(base)
        schema_migrations.migrate_schemas(agencies, base=base, processes=2)
    expected = rows(base, query)
    assert {codename for *_, codename in expected} == {
        "add_probething",
        "change_probething",
        "delete_probething",
        "view_probething",
    }
    for schema in agencies:
        assert rows(schema, query) == expected


def test_a_models_new_permission_reaches_every_agency(schemas: list[str]) -> None:
    # Only a plan that can bring content types or permissions copies them: this one can
    base, *agencies = schemas
    query = "SELECT codename, name FROM {schema}.auth_permission WHERE codename = 'probe_post'"
    options = {
        "ordering": ["-created_at"],
        "permissions": [("probe_post", "Can probe a post")],
    }
    with extra_migration("9004_probe_permission", [migrations.AlterModelOptions("post", options)]):
        provisioning.schema_migrate(base)
        schema_migrations.migrate_schemas(agencies, base=base, processes=1)
    assert rows(base, query) == {("probe_post", "Can probe a post")}
    for schema in agencies:
        assert rows(schema, query) == rows(base, query)


def test_a_migrating_process_takes_a_fresh_connection_after_its_share_of_schemas(
    schemas: list[str], settings: Any
) -> None:
    # One PostgreSQL backend for every agency would keep all their catalog entries in memory
    base, *agencies = schemas
    settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION = 3  # the public schema and two agencies
    backends: list[int] = []
    migrate = schema_migrations.SchemaMigrator.migrate

    def noting_the_backend(self: Any, schema: str) -> Any:
        done = migrate(self, schema)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
        return done

    with extra_migration("9001_probe_note", ADD_COLUMN):
        provisioning.schema_migrate(base)
        schema_migrations.SchemaMigrator.migrate = noting_the_backend  # type: ignore[method-assign]
        try:
            report = schema_migrations.migrate_schemas(agencies, base=base, processes=1)
        finally:
            schema_migrations.SchemaMigrator.migrate = migrate  # type: ignore[method-assign]
    assert len(report.migrated) == 3 and not report.failed
    # The first two schemas on one backend, the third on a new one
    assert backends[0] == backends[1] != backends[2], backends
    for schema in agencies:
        assert "probe_note" in columns(schema)


def _comment(apps: object, schema_editor: object) -> None:
    schema_editor.execute("COMMENT ON TABLE posts_post IS 'probed'")  # type: ignore[attr-defined]


def test_data_migrations_run_in_every_agency(schemas: list[str]) -> None:
    # A migration with Python code cannot be replayed as SQL: it runs in each schema itself
    base, *agencies = schemas
    with extra_migration("9003_probe_python", [migrations.RunPython(_comment, migrations.RunPython.noop)]):
        provisioning.schema_migrate(base)
        report = schema_migrations.migrate_schemas(agencies, base=base, processes=2)
    assert len(report.migrated) == 3 and not report.failed
    for schema in agencies:
        assert rows(schema, "SELECT obj_description('{schema}.posts_post'::regclass)") == {("probed",)}


def test_migrate_all_reports_what_it_did(committed: None) -> None:
    out = io.StringIO()
    call_command("migrate_all", stdout=out)
    text = out.getvalue()
    assert "agencies:" in text and "already current" in text and "All schemas are migrated." in text


def test_migrate_all_names_the_agency_that_failed_and_how_to_resume(schemas: list[str]) -> None:
    # An agency whose posts table already has the new column cannot take the migration
    agency_schema = "alpha"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote_ident(agency_schema)}.posts_post ADD COLUMN probe_note integer")
    err = io.StringIO()
    try:
        with (
            extra_migration("9001_probe_note", ADD_COLUMN),
            pytest.raises(CommandError, match=r"run `manage\.py migrate_all` again"),
        ):
            call_command("migrate_all", stdout=io.StringIO(), stderr=err, processes=1)
        assert f"{agency_schema}:" in err.getvalue()
    finally:
        _undo_probe_note(["alpha", "beta", provisioning.base_schema_name()])


def _undo_probe_note(schemas: list[str]) -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for schema in [*schemas, "public"]:
            if schema != "public":
                cursor.execute(
                    f"ALTER TABLE {quote_ident(schema)}.posts_post DROP COLUMN IF EXISTS probe_note"
                )
            cursor.execute(
                f"DELETE FROM {quote_ident(schema)}.django_migrations WHERE name = '9001_probe_note'"  # noqa: S608
            )
