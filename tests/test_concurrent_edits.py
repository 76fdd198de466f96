"""Two people (or two tabs) editing one post: the second save never silently undoes the first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.api.keys import api_key_create
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import Post, PostStatus
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.test_composer import attr, by_id, compose_data, connect, find, html, text, uploaded_id

pytestmark = pytest.mark.django_db


def signed_in(alpha: Agency, email: str) -> Client:
    client = client_for(alpha)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def opened(client: Client, post: Post) -> tuple[str, str]:
    """The edit page as a tab opens it: its version and its video."""
    page = html(client.get(f"/posts/{post.pk}/edit/"))
    version = attr(find(page, "input", name="version")[0], "value") or ""
    media_id = attr(find(page, "input", name="media_id")[0], "value") or ""
    assert version
    return version, media_id


def test_a_save_over_a_newer_version_is_refused_with_who_and_what_and_keeps_the_text(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    # Given a scheduled post, opened for editing by its owner and, at the same time, by Eda
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        User.objects.filter(email="owner@shared.example").update(time_zone="Europe/Paris")
        User.objects.create_user("eda@alpha.example", OWNER_PASSWORD, role=Role.ADMIN, name="Eda")
    owner, eda = signed_in(alpha, "owner@shared.example"), signed_in(alpha, "eda@alpha.example")
    owner.post("/posts/new/", compose_data(account, uploaded_id(owner)))
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
    owner_version, media_id = opened(owner, post)
    eda_version, _ = opened(eda, post)
    assert owner_version == eda_version

    # When Eda saves a new caption first
    first = eda.post(
        f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="Eda's words", version=eda_version)
    )
    assert first.status_code == 302

    # Then the owner's save of the page opened before is refused: who, when, what; their text kept
    second = owner.post(
        f"/posts/{post.pk}/edit/",
        compose_data(
            account, media_id, caption="Owner's words", privacy_level="SELF_ONLY", version=owner_version
        ),
    )
    assert second.status_code == 200
    page = html(second)
    banner = text(by_id(page, "form-errors"))
    assert "Not saved: eda@alpha.example saved this post at" in banner
    assert "caption" in banner.partition("changing the ")[2] and "CET" in banner
    assert text(by_id(page, "id_caption")) == "Owner's words"
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.caption == "Eda's words" and post.status == PostStatus.SCHEDULED
        assert post.privacy_level == "PUBLIC_TO_EVERYONE"
        assert AuditLog.objects.filter(action="post.edited", object_id=str(post.pk)).count() == 1

    # When the owner, having compared, saves again from the refused page: theirs replaces Eda's
    carried = attr(find(page, "input", name="version")[0], "value")
    assert carried and carried != owner_version
    third = owner.post(
        f"/posts/{post.pk}/edit/",
        compose_data(account, media_id, caption="Owner's words", version=carried),
    )
    assert third.status_code == 302
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.caption == "Owner's words"


def test_one_person_in_two_tabs_is_told_it_was_their_other_tab(alpha: Agency, tiktok: FakeTikTok) -> None:
    account = connect(alpha, tiktok)
    owner = signed_in(alpha, "owner@shared.example")
    owner.post("/posts/new/", compose_data(account, uploaded_id(owner), action="draft"))
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
    version, media_id = opened(owner, post)
    assert (
        owner.post(
            f"/posts/{post.pk}/edit/",
            compose_data(account, media_id, caption="Tab one", action="draft", version=version),
        ).status_code
        == 302
    )

    refused = owner.post(
        f"/posts/{post.pk}/edit/",
        compose_data(account, media_id, caption="Tab two", action="draft", version=version),
    )

    banner = text(by_id(html(refused), "form-errors"))
    assert banner.startswith("Not saved: You saved this post at")
    assert "in another tab, or before going back to this page" in banner
    with schema_context(alpha.schema_name):
        assert Post.objects.get().caption == "Tab one"
    # The composer is never served from the browser's cache: Back shows the post as it is now
    assert "no-store" in owner.get(f"/posts/{post.pk}/edit/")["Cache-Control"]


def test_an_api_change_sent_with_an_old_version_is_refused(alpha: Agency, tiktok: FakeTikTok) -> None:
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email="owner@shared.example")
        _key, raw = api_key_create(name="Planner", role=Role.ADMIN, expires_at=None, by=owner)
    api = Client(HTTP_HOST=alpha.primary_host, HTTP_AUTHORIZATION=f"Bearer {raw}")
    made = api.post(
        "/api/v1/posts",
        json.dumps({"account_id": str(account.pk), "caption": "v1"}),
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    body: dict[str, Any] = made.json()

    def patch(caption: str, version: str) -> Any:
        return api.patch(
            f"/api/v1/posts/{body['id']}",
            json.dumps({"caption": caption, "version": version}),
            content_type="application/json",
        )

    newer = patch("v2", body["version"])
    assert newer.status_code == 200 and newer.json()["caption"] == "v2"
    stale = patch("v3", body["version"])
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "post_changed"
    assert newer.json()["version"] in stale.json()["error"]["message"]
    with schema_context(alpha.schema_name):
        assert Post.objects.get().caption == "v2"
