"""SQL identifiers made from names we hold (schema, table and column names).

Django's `connection.ops.quote_name` only wraps a name in double quotes: a name holding one would
end the identifier. Schema names are built from checked slugs today, but SQL that names a schema
must not depend on every path that ever writes one: names go through PostgreSQL's own quoting
(embedded quotes doubled), by psycopg.
"""

from __future__ import annotations

from psycopg import sql


def quote_ident(*parts: str) -> str:
    """`"schema"."table"`, each part quoted as PostgreSQL's quote_ident() would."""
    return sql.Identifier(*parts).as_string(None)
