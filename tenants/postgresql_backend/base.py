"""django-tenants' PostgreSQL backend, with connections recycled once they served many agencies.

A PostgreSQL backend caches the catalog entries of every table it has touched and keeps
them for its lifetime; a worker thread's connection that serves every agency in turn would
hold those of all their schemas (each agency brings some two hundred relations), and a host
with many such connections runs out of memory. Each connection counts the agency schemas it
has set as its search path; once they reach `DATABASE_MAX_SCHEMAS_PER_CONNECTION`, the next
check between units of work (Django's between requests, ours between worker messages, see
apps/common/connections.py) closes it, and the next query opens a fresh one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schemas_served: set[str] = set()

    def connect(self) -> None:
        super().connect()
        self.schemas_served = set()

    def _handle_search_path(self, cursor: Any = None) -> None:
        super()._handle_search_path(cursor)
        if self.search_path_set_schemas:
            self.schemas_served.add(self.schema_name)

    def close_if_unusable_or_obsolete(self) -> None:
        super().close_if_unusable_or_obsolete()
        if (
            self.connection is not None
            and not self.in_atomic_block
            and len(self.schemas_served) >= settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION
        ):
            self.close()
