"""Fast schema provisioning: new agencies are cloned from a migrated, empty base schema.

Running every migration for each new agency takes seconds and grows with the project's
history; copying a ready schema (tables, indexes, constraints, identity sequences,
functions, triggers, grants and the rows of `django_migrations`, content types and
permissions; see "Copying a schema" below) takes a fraction of that, and does not grow
with the number of agencies.
The base schema is kept current by `manage.py migrate_all`; before every clone we
check that no migration is pending for it, so a clone can never be stale.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_context, schema_exists

from apps.common.sql import quote_ident
from tenants.db import connection

logger = logging.getLogger(__name__)


def base_schema_name() -> str:
    return str(settings.TENANT_BASE_SCHEMA)


def pending_migrations(schema_name: str) -> list[str]:
    """Every migration not recorded in `schema_name`, in the order they would run: a missing
    migration counts even when a later one of its app is recorded (a gap `migrate` would skip)."""
    with schema_context(schema_name):
        loader = MigrationLoader(connection)
    applied = set(loader.applied_migrations or ())
    pending: dict[tuple[str, str], None] = {}
    for leaf in loader.graph.leaf_nodes():
        for key in loader.graph.forwards_plan(leaf):
            if key not in applied:
                pending[key] = None
    return [f"{app_label}.{name}" for app_label, name in pending]


def schema_migrate(schema_name: str, *, verbosity: int = 0) -> None:
    """Create `schema_name` if needed and run every tenant migration in it (the slow way)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema_name)}")
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


# The base schema's applied migrations as last found complete by this process (see below).
_current_base: tuple[str, tuple[Any, ...]] | None = None


def _base_is_current(base: str) -> bool:
    """Whether `base` exists and carries every migration.

    The full check (Django's migration executor) lists every table on the search path, a
    query that grows with the number of agencies; it is rerun only when the base schema's
    applied migrations changed since this process last found it complete."""
    global _current_base
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(quote_ident(%s) || '.django_migrations')", [base])
        if cursor.fetchone()[0] is None:
            return False
        table = quote_ident(base, "django_migrations")
        cursor.execute(f"SELECT count(*), max(id), max(applied) FROM {table}")  # noqa: S608
        applied = tuple(cursor.fetchone())
    if _current_base == (base, applied):
        return True
    if pending_migrations(base):
        return False
    _current_base = (base, applied)
    return True


def schema_clone(schema_name: str) -> None:
    """Create `schema_name` as a copy of the base schema, in the caller's transaction."""
    base = base_schema_name()
    connection.set_schema_to_public()
    if not _base_is_current(base):
        raise RuntimeError(
            f"The base schema {base!r} is missing or behind the migrations: run `manage.py migrate_all`."
        )
    schema_copy(base, schema_name)


def schema_copy(source: str, schema_name: str) -> None:
    """Create `schema_name` as a copy of `source` (structure, grants and rows), in the caller's
    transaction. `schema_clone` checks first that the base schema is current; a restore copies the
    base schema when it is at the archive's migrations, whether or not the code is further on."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        # Every catalog lookup below goes through an index (by oid); with stale statistics (a
        # catalog that grew by thousands of schemas since it was last analysed) the planner
        # would scan whole catalogs instead: the clone slowed 2.8x at 1,000 agencies. Scans
        # stay possible where no index serves; the setting ends with the clone (or with the
        # transaction, should the clone fail).
        cursor.execute("SELECT current_setting('enable_seqscan')")
        [seqscan] = cursor.fetchone()
        cursor.execute("SET LOCAL enable_seqscan = off")
        _copy_schema(cursor, source, schema_name)
        _restore_names(source, schema_name)
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [seqscan])


# --- Copying a schema ---
#
# django-tenants' clone_schema() SQL function runs dozens of catalog queries per table, many
# through pg_indexes and information_schema views that read the catalog rows of every schema
# in the database: a clone took 0.35 s with ten agencies and over 3 s with two hundred, and
# kept growing. The copy below looks the base schema's objects up through catalog indexes
# only (what lives in a schema is found in pg_depend by the schema's oid; everything else by
# table oid), so its cost does not depend on how many agencies exist, and lets PostgreSQL
# copy each table's definition (CREATE TABLE ... LIKE ... INCLUDING ALL: columns, defaults,
# identity, NOT NULL and CHECK constraints, indexes, primary and unique keys, comments).
# Functions, rows, sequence positions, foreign keys, triggers and grants are added around it.
# Anything else in the base schema (views, types, standalone sequences...) is refused rather
# than silently left out; the provisioning test compares a clone with a migrated schema.


def _members(cursor: Any, schema: str) -> list[tuple[str, int, str, str]]:
    """What lives in `schema`: (catalog, oid, name, relkind or prokind), by pg_depend's index.
    (Indexes, constraints and triggers belong to their table and are found through it.)"""
    cursor.execute(
        "SELECT d.classid::regclass::text, d.objid, coalesce(c.relname, p.proname, ''), "
        "       coalesce(c.relkind::text, p.prokind::text, ''), "
        "       pg_describe_object(d.classid, d.objid, d.objsubid) "
        "FROM pg_depend d "
        "LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid "
        "LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid "
        "WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = %s::regnamespace "
        "AND d.deptype = 'n'",
        [schema],
    )
    members, unsupported = [], []
    for catalog, oid, name, kind, description in cursor.fetchall():
        if (catalog, kind) in (("pg_class", "r"), ("pg_class", "S"), ("pg_proc", "f"), ("pg_proc", "p")):
            members.append((catalog, oid, name, kind))
        else:
            unsupported.append(description)
    if unsupported:
        raise RuntimeError(f"The schema {schema} holds what cloning does not copy: {', '.join(unsupported)}.")
    return members


def _identity_sequences(cursor: Any, sequences: list[int]) -> dict[tuple[str, str], str]:
    """(table, column) -> quoted sequence name, for identity sequences; refuses any other."""
    cursor.execute(
        "SELECT quote_ident(t.relname), a.attname, quote_ident(s.relname) FROM pg_class s "
        "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid "
        "    AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' "
        "LEFT JOIN pg_class t ON t.oid = d.refobjid "
        "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
        "WHERE s.oid = ANY(%s)",
        [sequences],
    )
    names = {}
    for table, column, sequence in cursor.fetchall():
        if table is None:
            raise RuntimeError(f"Cloning does not copy sequence {sequence}: it is no identity column's.")
        names[(table, column)] = sequence
    return names


def _copy_schema(cursor: Any, base: str, clone: str) -> None:
    """Create `clone` with the structure, grants and rows of `base`."""
    cursor.execute("SELECT quote_ident(%s), quote_ident(%s)", [base, clone])
    src, dst = cursor.fetchone()
    members = _members(cursor, base)
    tables = [oid for catalog, oid, _, kind in members if kind == "r"]
    functions = [oid for catalog, oid, _, kind in members if catalog == "pg_proc"]
    sequences = [oid for catalog, oid, _, kind in members if kind == "S"]
    base_sequences = _identity_sequences(cursor, sequences)

    def here(definition: str) -> str:
        # Definitions name the base schema's objects qualified (it is not on the search path).
        return definition.replace(f"{src}.", f"{dst}.")

    # 1. The schema, its functions (triggers call them) and its tables.
    statements = [f"CREATE SCHEMA {dst}"]
    cursor.execute(
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.oid = ANY(%s) ORDER BY p.proname",
        [functions],
    )
    statements += [here(row[0]) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT quote_ident(c.relname), obj_description(c.oid, 'pg_class'), "
        "  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a "
        "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') "
        "FROM pg_class c WHERE c.oid = ANY(%s) ORDER BY c.relname",
        [tables],
    )
    columns = cursor.fetchall()
    for table, comment, _ in columns:
        statements.append(f"CREATE TABLE {dst}.{table} (LIKE {src}.{table} INCLUDING ALL)")
        if comment is not None:
            statements.append(f"COMMENT ON TABLE {dst}.{table} IS {_literal(cursor, comment)}")
    cursor.execute(";\n".join(statements))

    # 2. Identity sequences: LIKE names them after the table, the base may have kept older
    # names (a renamed table); give them the base's names and its positions.
    made = _identity_sequences(cursor, [oid for _, oid, _, kind in _members(cursor, clone) if kind == "S"])
    statements = []
    for key, sequence in base_sequences.items():
        if key not in made:
            raise RuntimeError(f"Cloning made no identity sequence for {key[0]}.{key[1]}.")
        if made[key] != sequence:
            statements.append(f"ALTER SEQUENCE {dst}.{made[key]} RENAME TO {sequence}")
        target = _literal(cursor, f"{dst}.{sequence}")
        # Every name in these statements was quoted by PostgreSQL's quote_ident().
        statements.append(f"SELECT setval({target}, last_value, is_called) FROM {src}.{sequence}")  # noqa: S608

    # 3. Rows (migrations applied, content types, permissions), then what refers to them.
    for table, _, names in columns:
        statements.append(
            f"INSERT INTO {dst}.{table} ({names}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {names} FROM {src}.{table}"
        )
    cursor.execute(
        "SELECT quote_ident(c.relname), quote_ident(k.conname), pg_get_constraintdef(k.oid) "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE k.conrelid = ANY(%s) AND k.contype = 'f' ORDER BY c.relname, k.conname",
        [tables],
    )
    statements += [
        f"ALTER TABLE {dst}.{table} ADD CONSTRAINT {name} {here(definition)}"
        for table, name, definition in cursor.fetchall()
    ]
    cursor.execute(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "WHERE t.tgrelid = ANY(%s) AND NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname",
        [tables],
    )
    statements += [here(row[0]) for row in cursor.fetchall()]
    statements += _grants(cursor, base, tables + sequences, dst)
    cursor.execute(";\n".join(statements))


def _grants(cursor: Any, base: str, relations: list[int], dst: str) -> list[str]:
    """The base schema's and its relations' privileges held by roles other than their owner."""
    cursor.execute(
        "SELECT 'SCHEMA ' || %(dst)s, a.privilege_type, "
        "       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "       a.is_grantable "
        "FROM pg_namespace n, aclexplode(n.nspacl) a "
        "WHERE n.oid = %(base)s::regnamespace AND a.grantee <> n.nspowner "
        "UNION ALL "
        "SELECT (CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END) || %(dst)s || '.' "
        "       || quote_ident(c.relname), a.privilege_type, "
        "       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "       a.is_grantable "
        "FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = ANY(%(relations)s) AND a.grantee <> c.relowner",
        {"base": base, "relations": relations, "dst": dst},
    )
    return [
        f"GRANT {privilege} ON {target} TO {grantee}{' WITH GRANT OPTION' if grantable else ''}"
        for target, privilege, grantee, grantable in cursor.fetchall()
    ]


def _literal(cursor: Any, value: str) -> str:
    cursor.execute("SELECT quote_literal(%s)", [value])
    return str(cursor.fetchone()[0])


def _restore_names(base: str, clone: str) -> None:
    """Give the clone's constraints and indexes the base schema's names.

    CREATE TABLE ... LIKE names the indexes and unique constraints it copies itself;
    migrations that later alter or drop them by name would then fail on cloned schemas.
    Matching is by table and definition, which the clone preserves.
    """
    q = quote_ident
    with connection.cursor() as cursor:
        tables = {
            schema: [oid for _, oid, _, kind in _members(cursor, schema) if kind == "r"]
            for schema in (base, clone)
        }
        constraints = {schema: _constraint_names(cursor, tables[schema]) for schema in (base, clone)}
        for (table, *_), base_name in constraints[base].items():
            clone_name = constraints[clone].get((table, *_))
            if clone_name is not None and clone_name != base_name:
                cursor.execute(
                    f"ALTER TABLE {q(clone)}.{q(table)} RENAME CONSTRAINT {q(clone_name)} TO {q(base_name)}"
                )
        indexes = {schema: _index_names(cursor, schema, tables[schema]) for schema in (base, clone)}
        for key, base_name in indexes[base].items():
            clone_name = indexes[clone].get(key)
            if clone_name is not None and clone_name != base_name:
                cursor.execute(f"ALTER INDEX {q(clone)}.{q(clone_name)} RENAME TO {q(base_name)}")


def _constraint_names(cursor: Any, tables: list[int]) -> dict[tuple[str, ...], str]:
    """(table, type, definition) -> name."""
    cursor.execute(
        "SELECT c.relname, k.contype, pg_get_constraintdef(k.oid), k.conname FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.conrelid = ANY(%s)",
        [tables],
    )
    return {(table, kind, definition): name for table, kind, definition, name in cursor.fetchall()}


def _index_names(cursor: Any, schema: str, tables: list[int]) -> dict[tuple[str, ...], str]:
    """(table, definition without its name or schema) -> name."""
    cursor.execute(
        "SELECT t.relname, pg_get_indexdef(i.indexrelid), x.relname FROM pg_index i "
        "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid "
        "WHERE i.indrelid = ANY(%s)",
        [tables],
    )
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
    quoted = quote_ident(schema_name)
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
