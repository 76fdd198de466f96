"""Property-based tests of the API from its own OpenAPI schema (schemathesis): whatever a client
sends that the schema allows, or nearly allows, no endpoint answers a 5xx. Requests go in-process
to the WSGI application, as an admin key of one agency, a few examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from apps.api.api import api
from apps.users.models import Role
from tenants.models import Agency
from tests.factories import PostFactory, TikTokAccountFactory
from tests.test_api import make_key

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
application = get_wsgi_application()


@pytest.fixture
def admin_key(alpha: Agency, settings: Any) -> str:
    settings.API_RATE_LIMIT = (100_000, 60)
    with schema_context(alpha.schema_name):
        PostFactory(account=TikTokAccountFactory())
    return make_key(alpha, role=Role.ADMIN)


@pytest.fixture
def in_process() -> Iterator[None]:
    """As Django's test client does: a request ending must not close the test's connection (its
    transaction is the test's)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_request_gets_a_server_error(case: Any, alpha: Agency, admin_key: str, in_process: None) -> None:
    case.call_and_validate(
        base_url=f"http://{alpha.primary_host}",
        app=application,
        headers={"Authorization": f"Bearer {admin_key}"},
        checks=[not_a_server_error],
    )
