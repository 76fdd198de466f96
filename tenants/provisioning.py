"""Fast schema provisioning: new agencies are cloned from a migrated, empty base schema.

Running every migration for each new agency takes seconds and grows with the project's
history; copying a ready schema (django-tenants' `clone_schema` SQL function, which
copies tables, indexes, constraints, functions, triggers and the rows of
`django_migrations`, content types and permissions) takes a fraction of that.
The base schema is kept current by `manage.py migrate_all`; before every clone we
check that no migration is pending for it, so a clone can never be stale.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.db.migrations.executor import MigrationExecutor
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context, schema_exists

from tenants.db import connection

logger = logging.getLogger(__name__)


def base_schema_name() -> str:
    return str(settings.TENANT_BASE_SCHEMA)


def pending_migrations(schema_name: str) -> list[str]:
    """Migrations that `migrate` would still apply to `schema_name`."""
    with schema_context(schema_name):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def schema_migrate(schema_name: str, *, verbosity: int = 0) -> None:
    """Create `schema_name` if needed and run every tenant migration in it (the slow way)."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"')
    call_command(
        "migrate_schemas", tenant=True, schema_name=schema_name, interactive=False, verbosity=verbosity
    )
    connection.set_schema_to_public()


def base_schema_prepare(*, verbosity: int = 0) -> None:
    """Make the base schema exist and carry every migration."""
    name = base_schema_name()
    ensure_clone_function()
    if schema_exists(name) and not pending_migrations(name):
        return
    logger.info("Migrating the base schema %s", name)
    schema_migrate(name, verbosity=verbosity)


def ensure_clone_function() -> None:
    """Install django-tenants' clone_schema SQL function once. Two agencies created at the same
    moment on a fresh database must not both try: a transaction-level lock serialises them."""
    if _clone_function_installed():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('postline:clone_schema_function'))")
        if not _clone_function_installed():
            CloneSchema()._create_clone_schema_function()


def _clone_function_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = 'clone_schema'"
        )
        return cursor.fetchone() is not None


def schema_clone(schema_name: str) -> None:
    """Create `schema_name` as a copy of the base schema, in the caller's transaction."""
    base = base_schema_name()
    if not schema_exists(base) or pending_migrations(base):
        raise RuntimeError(
            f"The base schema {base!r} is missing or behind the migrations: run `manage.py migrate_all`."
        )
    connection.set_schema_to_public()
    ensure_clone_function()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [base, schema_name])
    _restore_names(base, schema_name)


def _restore_names(base: str, clone: str) -> None:
    """Give the clone's constraints and indexes the base schema's names.

    clone_schema re-creates unique constraints inline, so PostgreSQL names them itself;
    migrations that later alter or drop them by name would then fail on cloned schemas.
    Matching is by table and definition, which the clone preserves.
    """
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        constraints = {schema: _constraint_names(cursor, schema) for schema in (base, clone)}
        for (table, *_), base_name in constraints[base].items():
            clone_name = constraints[clone].get((table, *_))
            if clone_name is not None and clone_name != base_name:
                cursor.execute(
                    f"ALTER TABLE {q(clone)}.{q(table)} RENAME CONSTRAINT {q(clone_name)} TO {q(base_name)}"
                )
        indexes = {schema: _index_names(cursor, schema) for schema in (base, clone)}
        for key, base_name in indexes[base].items():
            clone_name = indexes[clone].get(key)
            if clone_name is not None and clone_name != base_name:
                cursor.execute(f"ALTER INDEX {q(clone)}.{q(clone_name)} RENAME TO {q(base_name)}")


def _constraint_names(cursor: Any, schema: str) -> dict[tuple[str, ...], str]:
    """(table, type, definition) -> name."""
    cursor.execute(
        "SELECT c.relname, k.contype, pg_get_constraintdef(k.oid), k.conname FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = k.connamespace "
        "WHERE n.nspname = %s",
        [schema],
    )
    return {(table, kind, definition): name for table, kind, definition, name in cursor.fetchall()}


def _index_names(cursor: Any, schema: str) -> dict[tuple[str, ...], str]:
    """(table, definition without its name or schema) -> name."""
    cursor.execute("SELECT tablename, indexdef, indexname FROM pg_indexes WHERE schemaname = %s", [schema])
    names: dict[tuple[str, ...], str] = {}
    for table, definition, name in cursor.fetchall():
        anonymous = (
            definition.replace(f" {name} ", " ", 1).replace(f"{schema}.", "").replace(f'"{schema}".', "")
        )
        names[(table, anonymous)] = name
    return names


_SIGNATURE_QUERIES = {
    "tables": """
        SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "constraints": """
        SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
               k.condeferrable::text, k.condeferred::text
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = %(schema)s
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s
    """,
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
    """,
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s
    """,
    "migrations": "SELECT app, name FROM {schema}.django_migrations",
    "permissions": """
        SELECT t.app_label, t.model, p.codename FROM {schema}.auth_permission p
        JOIN {schema}.django_content_type t ON t.id = p.content_type_id
    """,
}


def schema_signature(schema_name: str) -> dict[str, set[tuple[str, ...]]]:
    """The structure of a schema (and its applied migrations), with its own name erased,
    so that two schemas can be compared for equality."""
    quoted = connection.ops.quote_name(schema_name)
    signature: dict[str, set[tuple[str, ...]]] = {}
    with connection.cursor() as cursor:
        for part, query in _SIGNATURE_QUERIES.items():
            cursor.execute(query.format(schema=quoted), {"schema": schema_name})
            signature[part] = {
                tuple(
                    str(value).replace(f"{quoted}.", "<schema>.").replace(f"{schema_name}.", "<schema>.")
                    for value in row
                )
                for row in cursor.fetchall()
            }
    return signature
