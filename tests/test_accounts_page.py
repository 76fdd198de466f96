"""The accounts page: every connected account with its health, in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
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


def test_those_who_manage_an_account_name_its_client_and_others_cannot(alpha: Agency) -> None:
    from apps.accounts.permissions import Perm, access_set
    from apps.audit.models import AuditLog
    from apps.users.models import User

    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="northbakery", client_label="")
        editor = User.objects.create_user("ed@alpha.example", OWNER_PASSWORD, role="editor")
        access_set(user=editor, account=account, perms={Perm.VIEW, Perm.DRAFT}, by=None)
    owner = client_for(alpha)
    owner.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})

    # The owner names the client (spaces tidied) and is told
    response = owner.post(
        f"/accounts/{account.pk}/client/", {"client_label": "  North   Bakery Ltd "}, follow=True
    )
    assert "@northbakery now belongs to the client “North Bakery Ltd”." in response.content.decode()
    assert 'value="North Bakery Ltd"' in response.content.decode()
    # A name too long is refused with why, and nothing changes
    response = owner.post(f"/accounts/{account.pk}/client/", {"client_label": "x" * 129}, follow=True)
    assert "Keep the client&#x27;s name to 128 characters at most (129 now)." in response.content.decode()
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
        assert account.client_label == "North Bakery Ltd"
        entry = AuditLog.objects.get(action="account.client_changed")
        assert entry.changes == {"client": {"old": "", "new": "North Bakery Ltd"}}

    # An editor who does not manage the account sees the name but no form, and cannot post one
    editor_client = client_for(alpha)
    editor_client.post("/login/", {"username": "ed@alpha.example", "password": OWNER_PASSWORD})
    page = editor_client.get("/accounts/").content.decode()
    assert "North Bakery Ltd" in page and f"/accounts/{account.pk}/client/" not in page
    assert (
        editor_client.post(f"/accounts/{account.pk}/client/", {"client_label": "Hijacked"}).status_code == 404
    )
    with schema_context(alpha.schema_name):
        assert TikTokAccount.objects.get(pk=account.pk).client_label == "North Bakery Ltd"
