"""Test setup: one test database per worker holding two agencies, cloned the fast way,
and one schema built by running every migration, to compare them. Each test runs in a
transaction that is rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tenants import provisioning
from tenants.models import Agency
from tenants.services import agency_create

OWNER_PASSWORD = "a-long-test-password-42"
REFERENCE_SCHEMA = "reference_migrated"


def pytest_configure() -> None:
    # Fast hashing: the suite signs in often; production hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        provisioning.base_schema_prepare()
        provisioning.schema_migrate(REFERENCE_SCHEMA)
        for slug, name in (("alpha", "Alpha Agency"), ("beta", "Beta Agency")):
            agency_create(
                slug=slug, name=name, owner_email="owner@shared.example", owner_password=OWNER_PASSWORD
            )
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _public_schema_between_tests() -> Iterator[None]:
    yield
    connection.set_schema_to_public()


@pytest.fixture
def alpha(db: None) -> Agency:
    return Agency.objects.get(slug="alpha")


@pytest.fixture
def beta(db: None) -> Agency:
    return Agency.objects.get(slug="beta")


@pytest.fixture
def in_alpha(alpha: Agency) -> Iterator[Agency]:
    with schema_context(alpha.schema_name):
        yield alpha


def client_for(agency: Agency | None) -> Client:
    host = agency.primary_host if agency is not None else settings.PLATFORM_DOMAIN
    return Client(HTTP_HOST=host)
