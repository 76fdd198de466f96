"""The database connection, typed as django-tenants' wrapper (it knows its schema)."""

from django.db import connection as _connection
from django_tenants.postgresql_backend.base import DatabaseWrapper

connection: DatabaseWrapper = _connection
