"""Caption templates and hashtag groups: the agency's and each client's, kept by those who draft."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.captions.models import CaptionSnippet, SnippetKind
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import TikTokAccountFactory

pytestmark = pytest.mark.django_db


def signed_in(agency: Agency, email: str) -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def test_a_member_keeps_their_clients_templates_and_sees_no_one_elses(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        bakery = TikTokAccountFactory(client_label="Bakery")
        TikTokAccountFactory(client_label="Garage")
        editor = User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        access_set(user=editor, account=bakery, perms={Perm.VIEW, Perm.DRAFT}, by=None)
        CaptionSnippet.objects.create(
            kind=SnippetKind.TEMPLATE, name="Garage promo", text="Oil 🛢", client_label="Garage"
        )
        User.objects.create_user("viewer@alpha.example", OWNER_PASSWORD, role=Role.VIEWER)
    client = signed_in(alpha, "editor@alpha.example")

    page = client.get("/captions/").content.decode()
    saved = client.post(
        "/captions/",
        {"kind": "hashtags", "name": "Bread", "text": "sourdough, #bread  bread", "client_label": "Bakery"},
        follow=True,
    ).content.decode()
    refused = client.post(
        "/captions/", {"kind": "template", "name": "x", "text": "y", "client_label": "Garage"}
    )
    empty = client.post("/captions/", {"kind": "template", "name": "Kept", "text": "\r\n"}).content.decode()

    assert "Client: Bakery" in page and "Garage" not in page  # neither their template nor the choice
    assert "Saved hashtag group “Bread”." in saved and "#sourdough #bread" in saved
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert "Write what the composer inserts." in empty and 'value="Kept"' in empty
    with schema_context(alpha.schema_name):
        bread = CaptionSnippet.objects.get(name="Bread")
        garage = CaptionSnippet.objects.get(name="Garage promo")
        assert (bread.text, bread.client_label) == ("#sourdough #bread", "Bakery")
        assert AuditLog.objects.filter(action="caption_snippet.created", object_id=str(bread.pk)).exists()
    assert client.get(f"/captions/{garage.pk}/").status_code == 404
    assert client.post(f"/captions/{garage.pk}/delete/").status_code == 404
    edited = client.post(
        f"/captions/{bread.pk}/", {"name": "Bread", "text": "levain", "client_label": "Bakery"}, follow=True
    )
    assert "#levain" in edited.content.decode()
    client.post(f"/captions/{bread.pk}/delete/")
    with schema_context(alpha.schema_name):
        assert not CaptionSnippet.objects.filter(pk=bread.pk).exists()
        actions = set(AuditLog.objects.filter(object_id=str(bread.pk)).values_list("action", flat=True))
        assert actions == {"caption_snippet.created", "caption_snippet.changed", "caption_snippet.deleted"}
    # Someone who may not draft has no templates page.
    assert signed_in(alpha, "viewer@alpha.example").get("/captions/").status_code == 404


def test_the_composer_offers_the_agencys_and_the_clients_templates(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        TikTokAccountFactory(client_label="Bakery")
        CaptionSnippet.objects.create(kind=SnippetKind.TEMPLATE, name="Sign-off", text="See you 👋")
        CaptionSnippet.objects.create(
            kind=SnippetKind.HASHTAGS, name="Bread", text="#bread", client_label="Bakery"
        )

    page = signed_in(alpha, "owner@shared.example").get("/posts/new/").content.decode()

    assert 'id="caption-insert" hidden' in page  # shown by its script
    assert 'data-client="" data-text="See you 👋">Caption template: Sign-off' in page
    assert 'data-client="Bakery" data-text="#bread">Hashtag group: Bread (Bakery)' in page
    assert 'data-client="Bakery"' in page.split('id="id_account"')[1].split("</select>")[0]
