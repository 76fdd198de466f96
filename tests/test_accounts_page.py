"""The accounts page: every connected account with its health, in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import TikTokAccountFactory

pytestmark = pytest.mark.django_db


def test_accounts_page_shows_health_in_constant_queries(alpha: Agency) -> None:
    client = client_for(alpha)
    client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})

    def load() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/accounts/")
        assert response.status_code == 200
        return len(captured), response.content.decode()

    with schema_context(alpha.schema_name):
        TikTokAccountFactory(username="firstclient", follower_count=128400)
    few, _ = load()
    with schema_context(alpha.schema_name):
        TikTokAccountFactory.create_batch(6)
        TikTokAccountFactory(
            username="brokenclient", status="needs_reauth", status_reason="TikTok refused to renew the token."
        )
    many, page = load()

    assert many == few
    assert "@firstclient" in page and "@brokenclient" in page
    assert "Needs reconnecting" in page and "TikTok refused to renew the token." in page
    assert "Reconnect" in page
    assert "act.example-access-token" not in page  # tokens never reach the page
    # Counts read as on Analytics, and every cell is labelled for the phone layout (no header row there)
    assert '<td data-label="Followers">128,400</td>' in page
    assert '<td data-label="Client">' in page and '<td data-label="Authorisation">' in page
