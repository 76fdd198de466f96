"""The agency's settings page: owners and admins change the name and default time zone."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for

pytestmark = pytest.mark.django_db


def signed_in(agency: Agency, email: str = "owner@shared.example") -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, response.content[:2000]
    return client


def test_owner_changes_the_name_and_time_zone(alpha: Agency) -> None:
    client = signed_in(alpha)
    page = client.get("/settings/")
    assert page.status_code == 200
    assert b'value="Alpha Agency"' in page.content
    assert b'<option value="UTC" selected>UTC</option>' in page.content

    response = client.post(
        "/settings/", {"name": "Alpha Studio", "default_time_zone": "Europe/Paris"}, follow=True
    )

    assert response.redirect_chain == [("/settings/", 302)]
    assert b"Settings saved." in response.content
    assert b'<span class="agency-name">Alpha Studio</span>' in response.content  # the header
    assert b'<option value="Europe/Paris" selected>Europe/Paris</option>' in response.content
    alpha.refresh_from_db()
    assert (alpha.name, alpha.default_time_zone) == ("Alpha Studio", "Europe/Paris")
    with schema_context(alpha.schema_name):
        entry = AuditLog.objects.get(action="settings.changed")
        assert entry.actor_email == "owner@shared.example"
        assert entry.changes == {
            "name": {"old": "Alpha Agency", "new": "Alpha Studio"},
            "default_time_zone": {"old": "UTC", "new": "Europe/Paris"},
        }


def test_saving_unchanged_settings_records_nothing(alpha: Agency) -> None:
    client = signed_in(alpha)
    response = client.post("/settings/", {"name": "Alpha Agency", "default_time_zone": "UTC"}, follow=True)
    assert b"Nothing changed" in response.content
    with schema_context(alpha.schema_name):
        assert not AuditLog.objects.filter(action="settings.changed").exists()


def test_invalid_settings_are_refused_next_to_their_field(alpha: Agency) -> None:
    client = signed_in(alpha)
    response = client.post("/settings/", {"name": "  ", "default_time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="field-error" id="id_name_error">Give the agency a name.</p>' in html
    assert 'id="id_default_time_zone_error">Select a valid choice.' in html
    alpha.refresh_from_db()
    assert alpha.name == "Alpha Agency"


def test_an_admin_may_change_settings(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("admin@alpha.example", OWNER_PASSWORD, role=Role.ADMIN)
    assert signed_in(alpha, "admin@alpha.example").get("/settings/").status_code == 200


@pytest.mark.parametrize("role", [Role.EDITOR, Role.MANAGER, Role.VIEWER, Role.CLIENT])
def test_other_roles_get_not_found(alpha: Agency, role: str) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("member@alpha.example", OWNER_PASSWORD, role=role)
    client = signed_in(alpha, "member@alpha.example")

    assert client.get("/settings/").status_code == 404
    assert client.post("/settings/", {"name": "Taken over", "default_time_zone": "UTC"}).status_code == 404
    assert b'href="/settings/"' not in client.get("/").content  # no link to it either
    alpha.refresh_from_db()
    assert alpha.name == "Alpha Agency"


def test_signed_out_visitors_are_sent_to_sign_in(alpha: Agency) -> None:
    response = client_for(alpha).get("/settings/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/settings/"
