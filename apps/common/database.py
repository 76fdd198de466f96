"""PgBouncer in transaction (or statement) pooling mode is not supported, and refused at start-up.

Why: several things here rely on a server connection staying ours between transactions, which
a transaction-pooling proxy breaks by handing it to another client after every transaction:

- django-tenants' `SET search_path` is sent once per connection (TENANT_LIMIT_SET_CALLS) and
  outside a transaction, so it would land on one server connection and the next query, on
  another, would run in whatever schema that one was left in: another agency's rows;
- publishing holds a session advisory lock per post (apps/publishing/services.py) across
  several transactions, which would be taken on one server connection and released on another;
- `.iterator()` uses server-side cursors that outlive a transaction.

PgBouncer in session mode is fine (a client keeps its server connection), and so is any
proxy that is not one. How it is seen: a session setting made on one connection (and the
server connection it used, handed back after its statement by a transaction pooler) is
visible on the next connection opened: only a pooler that shares server connections between
clients shows one client's session state to another.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

logger = logging.getLogger(__name__)

PROBE_SETTING = "postline.pool_probe"


def _connect(params: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(**params, autocommit=True)


def database_shares_sessions(*, alias: str = "default", tries: int = 3) -> bool:
    """True when connections to the database share server sessions (transaction pooling)."""
    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    for _ in range(tries):
        token = secrets.token_hex(8)
        with _connect(params) as first:
            first.execute("SELECT set_config(%s, %s, false)", [PROBE_SETTING, token])
            with _connect(params) as second:
                row = second.execute("SELECT current_setting(%s, true)", [PROBE_SETTING]).fetchone()
            first.execute("SELECT set_config(%s, '', false)", [PROBE_SETTING])
        if row is not None and row[0] == token:
            return True
    return False


def database_refuse_transaction_pooling(*, alias: str = "default") -> None:
    """Raise ImproperlyConfigured when the database is behind a transaction-pooling proxy.
    An unreachable database is not refused here: /readyz reports it, and the process recovers
    when it comes back."""
    try:
        shared = database_shares_sessions(alias=alias)
    except psycopg.OperationalError:
        logger.warning("The database did not answer; the pooling check is skipped.")
        return
    if shared:
        raise ImproperlyConfigured(
            "The database connection shares server sessions between clients (PgBouncer in "
            "transaction or statement mode?). Postline needs session pooling or a direct "
            "connection: agencies' schemas are chosen per connection (search_path) and "
            "publishing holds session advisory locks. Set pool_mode = session, or connect "
            "to PostgreSQL directly."
        )
