"""Heavy reads from a PostgreSQL streaming replica, in the agency's schema; never a write.

`DATABASE_REPLICA_URL` names a hot standby of the primary (streaming replication). Reads that
are heavy and may be a few seconds old (the analytics page, client reports, agency exports) ask
`heavy_reads()` where to read:
- the replica, with the schema of the agency the primary connection serves as its search path
  (django-tenants sets it on the default connection only);
- the primary when there is no replica, when it is more than `DATABASE_REPLICA_MAX_LAG` seconds
  behind, or when it does not answer (then it is not asked again for `DOWN_SECONDS`).
The answer says how far behind what is read may be, for the page to say so.

How far behind: the replica is current when it has replayed the primary's current WAL position;
otherwise by the age of the last transaction it replayed (how long since it last kept up).

Writes: `PrimaryForWrites` sends every write to the primary, also of an object read from the
replica (Django would otherwise save it where it came from), and no migration runs there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA = "replica"
DOWN_SECONDS = 10.0  # a replica that did not answer is left alone this long

logger = logging.getLogger(__name__)
_down_until = 0.0


@dataclass(frozen=True)
class ReadFrom:
    """Where to read: a database alias, and how many seconds behind the primary it may be."""

    alias: str
    behind_seconds: float = 0.0

    @property
    def lagging(self) -> bool:
        """Whether what is read may miss the last second or more of changes (worth saying)."""
        return self.behind_seconds >= 1.0


PRIMARY = ReadFrom(DEFAULT_DB_ALIAS)


def heavy_reads() -> ReadFrom:
    """Where a heavy read for the current agency goes now (see the module's docstring)."""
    global _down_until
    if REPLICA not in settings.DATABASES or time.monotonic() < _down_until:
        return PRIMARY
    primary: Any = connections[DEFAULT_DB_ALIAS]
    replica: Any = connections[REPLICA]  # both django-tenants' wrappers
    tenant = getattr(primary, "tenant", None)
    try:
        if tenant is None:
            replica.set_schema_to_public()
        else:
            replica.set_tenant(tenant)
        with primary.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            (position,) = cursor.fetchone()
        with replica.cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn,"
                " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())",
                [position],
            )
            in_recovery, caught_up, age = cursor.fetchone()
    except DatabaseError as exc:
        _down_until = time.monotonic() + DOWN_SECONDS
        logger.warning("replica_unavailable", extra={"error": type(exc).__name__})
        replica.close_if_unusable_or_obsolete()
        return PRIMARY
    if not in_recovery or caught_up:
        return ReadFrom(REPLICA)
    behind = float(age) if age is not None else float("inf")
    if behind > settings.DATABASE_REPLICA_MAX_LAG:
        return PRIMARY
    return ReadFrom(REPLICA, behind)


class PrimaryForWrites:
    """Database router: writes go to the primary, whatever the object was read from."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        aliases = {DEFAULT_DB_ALIAS, REPLICA}
        return True if {obj1._state.db, obj2._state.db} <= aliases else None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        return False if db == REPLICA else None
