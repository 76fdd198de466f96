"""Agencies are isolated from each other: hosts, sessions, data, admin and cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.posts.models import Post
from apps.users.models import User
from tenants.models import Agency
from tenants.services import agency_delete, agency_suspend
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_unknown_host_is_not_found(alpha: Agency) -> None:
    response = client_for(alpha).get("/", HTTP_HOST="nobody.localhost")
    assert response.status_code == 404
    assert b"Alpha" not in response.content


def test_root_domain_serves_the_public_site_and_agency_hosts_their_login(alpha: Agency) -> None:
    public = client_for(None).get("/")
    assert public.status_code == 200
    assert b"Schedule and publish TikTok videos" in public.content

    login = client_for(alpha).get("/login/")
    assert login.status_code == 200
    assert b"Sign in to Alpha Agency" in login.content


def test_owner_signs_in_and_sees_their_agency(alpha: Agency) -> None:
    client = client_for(alpha)
    response = client.post(
        "/login/", {"username": "OWNER@shared.example", "password": OWNER_PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert b"Alpha Agency" in response.content
    assert b"owner@shared.example" in response.content


def test_wrong_password_is_refused_with_a_message(alpha: Agency) -> None:
    client = client_for(alpha)
    response = client.post("/login/", {"username": "owner@shared.example", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct email address and password" in response.content
    assert b'value="owner@shared.example"' in response.content
    assert client.get("/").status_code == 302


def test_session_from_one_agency_is_refused_on_another(alpha: Agency, beta: Agency) -> None:
    # Given the same email is a user in both agencies, signed in on alpha
    alpha_client = client_for(alpha)
    alpha_client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    assert alpha_client.get("/").status_code == 200
    session_cookie = alpha_client.cookies["sessionid"].value

    # When that session cookie is presented to beta
    beta_client = client_for(beta)
    beta_client.cookies["sessionid"] = session_cookie
    response = beta_client.get("/")

    # Then beta treats the visitor as anonymous
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_objects_of_one_agency_are_invisible_from_another(alpha: Agency, beta: Agency) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(caption="Alpha's secret launch")
        account_id = post.account_id
        assert Post.objects.filter(pk=post.pk).exists()
    with schema_context(beta.schema_name):
        assert not Post.objects.filter(pk=post.pk).exists()
        assert not TikTokAccount.objects.filter(pk=account_id).exists()
        assert not Post.objects.filter(caption__contains="Alpha").exists()


def test_agency_admin_shows_only_its_own_objects(alpha: Agency, beta: Agency) -> None:
    with schema_context(alpha.schema_name):
        post = PostFactory(caption="Alpha campaign teaser")
    for agency in (alpha, beta):
        client = client_for(agency)
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
        listing = client.get("/admin/posts/post/")
        detail = client.get(f"/admin/posts/post/{post.pk}/change/")
        if agency == alpha:
            assert b"Alpha campaign teaser" in listing.content
            assert detail.status_code == 200
        else:
            assert listing.status_code == 200
            assert b"Alpha campaign teaser" not in listing.content
            # The admin redirects to its index with "doesn't exist" rather than showing anything.
            assert detail.status_code == 302
            assert b"Alpha campaign teaser" not in client.get(detail["Location"]).content


def test_cache_keys_carry_the_agency(alpha: Agency, beta: Agency) -> None:
    key = "dashboard:summary"
    with schema_context(alpha.schema_name):
        cache.set(key, "alpha data", 30)
    try:
        with schema_context(beta.schema_name):
            assert cache.get(key) is None
        with schema_context(alpha.schema_name):
            assert cache.get(key) == "alpha data"
    finally:
        with schema_context(alpha.schema_name):
            cache.delete(key)


def test_suspended_agency_says_so_and_deleted_agency_is_gone(alpha: Agency) -> None:
    agency_suspend(agency=alpha)
    suspended = client_for(alpha).get("/login/")
    assert suspended.status_code == 403
    assert b"is suspended" in suspended.content
    assert b"Sign in" not in suspended.content

    agency_delete(agency=alpha)
    assert client_for(alpha).get("/login/").status_code == 404


def test_operators_are_not_agency_users(alpha: Agency) -> None:
    User.objects.create_superuser("operator@postline.example", OWNER_PASSWORD)
    client = client_for(alpha)
    client.post("/login/", {"username": "operator@postline.example", "password": OWNER_PASSWORD})
    assert client.get("/").status_code == 302
