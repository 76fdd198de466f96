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

from django.conf import settings
from django.core.management import call_command
from django.db import connection as default_connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.clone import CloneSchema
from django_tenants.postgresql_backend.base import DatabaseWrapper
from django_tenants.utils import schema_context, schema_exists

logger = logging.getLogger(__name__)
# django-tenants' connection: it knows which schema it is in.
connection: DatabaseWrapper = default_connection


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
    if schema_exists(name) and not pending_migrations(name):
        return
    logger.info("Migrating the base schema %s", name)
    schema_migrate(name, verbosity=verbosity)


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
    if not _clone_function_installed():
        CloneSchema()._create_clone_schema_function()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [base, schema_name])
