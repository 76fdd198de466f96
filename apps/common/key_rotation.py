"""Re-encrypting every stored secret with the current first key."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

from apps.common import crypto
from apps.common.fields import EncryptedTextField
from apps.common.sql import quote_ident


@dataclass(frozen=True)
class RotationResult:
    schema: str
    values: int


@dataclass(frozen=True)
class KeyCensus:
    """How a schema's non-empty encrypted values stand against FIELD_ENCRYPTION_KEYS."""

    schema: str
    current: int  # under the first key
    old: int  # under another key still listed: that key cannot be dropped yet
    unreadable: int  # under no listed key


def key_census_current_schema(schema: str) -> KeyCensus:
    """Count the schema's encrypted values by the key that opens them (nothing is changed)."""
    counts = {"current": 0, "old": 0, "unreadable": 0}
    with connection.cursor() as cursor:
        for model, columns in encrypted_columns():
            quoted = ", ".join(quote_ident(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {quote_ident(model._meta.db_table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if not value:
                        continue
                    index = crypto.key_index(value)
                    counts["unreadable" if index is None else "current" if index == 0 else "old"] += 1
    return KeyCensus(schema=schema, **counts)


def encrypted_columns() -> list[tuple[type[models.Model], list[str]]]:
    """Every tenant model with encrypted fields, and those fields' columns."""
    tenant_apps = set(settings.TENANT_APPS)
    found = []
    for model in apps.get_models():
        if model._meta.app_config is None or model._meta.app_config.name not in tenant_apps:
            continue
        columns = [str(f.column) for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if columns:
            found.append((model, columns))
    return found


def rotate_current_schema(schema: str) -> RotationResult:
    """Rotate every non-empty encrypted value in the schema the connection is in.

    Reads and writes the ciphertext directly (never the plaintext), row-locked, in one
    transaction: a value no key can open aborts the whole schema, leaving it unchanged.
    """
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for model, columns in encrypted_columns():
            table = quote_ident(model._meta.db_table)
            pk = quote_ident(str(model._meta.pk.column))
            quoted = [quote_ident(c) for c in columns]
            cursor.execute(f"SELECT {pk}, {', '.join(quoted)} FROM {table} FOR UPDATE")  # noqa: S608
            for row in cursor.fetchall():
                row_pk, values = row[0], row[1:]
                rotated = [crypto.rotate(v) if v else v for v in values]
                count += sum(1 for v in values if v)
                assignments = ", ".join(f"{c} = %s" for c in quoted)
                cursor.execute(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", [*rotated, row_pk])  # noqa: S608
    return RotationResult(schema=schema, values=count)
