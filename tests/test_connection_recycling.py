"""A connection that served many agencies' schemas is replaced between units of work.

A PostgreSQL backend keeps the catalog entries of every table it touched; a worker thread
serving every agency in turn would otherwise grow without bound (tenants/postgresql_backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import close_old_connections, connection

from tenants import provisioning


@pytest.fixture
def committed(django_db_setup: None, django_db_blocker: Any, settings: Any) -> Iterator[None]:
    settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION = 3
    # Kept connections, as under gunicorn and in workers (the suite otherwise closes them each time)
    age = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 300
    with django_db_blocker.unblock():
        connection.close()
        yield
        connection.set_schema_to_public()
        connection.settings_dict["CONN_MAX_AGE"] = age
        connection.close()


def backend_after_visiting(schema: str) -> int:
    connection.set_schema(schema)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users_user")
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    connection.set_schema_to_public()
    close_old_connections()  # what happens between two requests or two worker messages
    return pid


def test_a_connection_is_replaced_once_it_served_the_limit_of_schemas(committed: None) -> None:
    first = backend_after_visiting("alpha")
    assert backend_after_visiting("alpha") == first  # the same agency again counts once
    assert backend_after_visiting("beta") == first
    third = backend_after_visiting(provisioning.base_schema_name())  # the third: closed after this unit
    assert third == first
    fresh = backend_after_visiting("alpha")
    assert fresh != first, "the connection that served three schemas was kept"
    assert backend_after_visiting("beta") == fresh  # a fresh connection starts counting again
