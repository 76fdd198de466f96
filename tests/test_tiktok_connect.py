"""Connecting a TikTok account through the real OAuth pages of the fake TikTok."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostStatus, PublishAttempt
from apps.publishing.jobs import job_set
from apps.publishing.models import DueJob, JobKind
from apps.tiktok.models import TikTokRoute
from apps.users.models import User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory
from tests.tiktok_flow import consent, finish, land, start_connect

pytestmark = pytest.mark.django_db

PUBLIC_CREATOR = "fake-open-public-001"


@pytest.fixture
def owner(alpha: Agency) -> Client:
    client = client_for(alpha)
    client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    return client


def test_connect_end_to_end(alpha: Agency, beta: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    # Given the owner starts a connection and picks a creator on TikTok's consent page
    authorize_url = start_connect(owner)
    assert authorize_url.startswith(tiktok.base_url) and "disable_auto_auth=1" in authorize_url
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and re.fullmatch(
        "[0-9a-f]{64}", query["code_challenge"][0]
    )
    callback = consent(authorize_url, creator=PUBLIC_CREATOR)

    # When TikTok sends the browser back to the root-domain callback
    status, location, _ = finish(callback)

    # Then the browser goes on to the agency's subdomain, where its session finishes the connection
    assert status == 302 and location.startswith("http://alpha.localhost:8000/accounts/connect/finish/")
    assert not [c for c in tiktok.calls if c["endpoint"] == "token"]  # nothing exchanged on the root domain
    page = land(owner, location)
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
        assert f"Connected {account}" in page
        assert account.status == AccountStatus.ACTIVE and account.username
        assert account.access_token.reveal() and account.refresh_token.reveal()
        assert account.access_token.reveal() not in page
        assert AuditLog.objects.filter(action="account.connected", object_id=str(account.pk)).count() == 1
    assert TikTokRoute.objects.filter(open_id=PUBLIC_CREATOR, agency=alpha).exists()
    with schema_context(beta.schema_name):
        assert not TikTokAccount.all_objects.filter(open_id=PUBLIC_CREATOR).exists()


def test_reconnecting_keeps_one_account_and_restores_it(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    for _ in range(2):
        land(owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1])
    with schema_context(alpha.schema_name):
        assert TikTokAccount.all_objects.filter(open_id=PUBLIC_CREATOR).count() == 1
        assert AuditLog.objects.filter(action="account.reconnected").count() == 1


def test_missing_scope_stores_nothing_and_says_which(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR, drop_scopes=("video.publish",))
    page = land(owner, finish(callback)[1])
    assert "not granted: video.publish" in page
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.all_objects.exists()
    assert [c["endpoint"] for c in tiktok.calls if c["endpoint"] == "revoke"] == ["revoke"]


def test_denied_consent_says_so(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR, decision="cancel")
    assert "error=access_denied" in callback
    page = land(owner, finish(callback)[1])
    assert "You cancelled on TikTok, so no account was connected." in page
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.all_objects.exists()


def test_forged_state_is_refused(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    status, _, body = finish("http://localhost:8000/oauth/tiktok/callback/?code=abc&state=forged-state")
    assert status == 400
    assert "This connection link is not valid." in body
    # nor on the agency's own finishing step
    page = land(owner, "/accounts/connect/finish/?code=abc&state=forged-state", status=400)
    assert "This connection link is not valid." in page
    assert not [c for c in tiktok.calls if c["endpoint"] == "token"]


def test_replayed_state_is_refused(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR)
    assert "Connected" in land(owner, finish(callback)[1])
    page = land(owner, finish(callback)[1], status=400)
    assert "already been used" in page
    assert len([c for c in tiktok.calls if c["endpoint"] == "token"]) == 1


def test_tiktok_down_during_exchange_is_explained(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR)
    tiktok.add_fault("token", "http_5xx", count=1, status=503)
    page = land(owner, finish(callback)[1])
    assert "TikTok did not complete the connection" in page
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.all_objects.exists()


def test_only_managers_may_connect(alpha: Agency, tiktok: FakeTikTok) -> None:
    from tests.factories import UserFactory

    with schema_context(alpha.schema_name):
        UserFactory(email="viewer@alpha.example", role="viewer")
    viewer = client_for(alpha)
    viewer.post("/login/", {"username": "viewer@alpha.example", "password": OWNER_PASSWORD})
    response = viewer.post("/accounts/connect/", follow=True)
    assert "Only owners, admins and managers can connect accounts." in response.content.decode()
    assert not tiktok.calls


def test_disconnect_revokes_at_tiktok(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    land(owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1])
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
    page = owner.post(f"/accounts/{account.pk}/disconnect/", {"confirm": "yes"}, follow=True).content.decode()
    assert f"Disconnected {account}" in page
    assert any(c["endpoint"] == "revoke" for c in tiktok.calls)
    with schema_context(alpha.schema_name):
        gone = TikTokAccount.all_objects.get(pk=account.pk)
        assert gone.is_deleted and gone.status == AccountStatus.REVOKED and not gone.refresh_token
        assert AuditLog.objects.filter(action="account.disconnected").exists()


def _manager(alpha: Agency, email: str) -> Client:
    from tests.factories import UserFactory

    with schema_context(alpha.schema_name):
        UserFactory(email=email, role="manager")
    client = client_for(alpha)
    client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    return client


def test_reconnecting_an_account_takes_managing_it_and_grants_nothing(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given an account the owner connected; one manager may only view it, another manages it
    from apps.accounts.permissions import Perm, access_set, access_table

    land(owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1])
    viewer, manager = _manager(alpha, "viewonly@alpha.example"), _manager(alpha, "manages@alpha.example")
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
        token_before = account.access_token.reveal()
        users = {u.email: u for u in User.objects.filter(email__endswith="@alpha.example")}
        access_set(user=users["viewonly@alpha.example"], account=account, perms=[Perm.VIEW], by=None)
        access_set(user=users["manages@alpha.example"], account=account, perms=[Perm.MANAGE], by=None)

    # When the view-only manager goes through TikTok's consent for the same creator
    page = land(viewer, finish(consent(start_connect(viewer), creator=PUBLIC_CREATOR))[1])

    # Then nothing changed: not the tokens, not their access
    assert "already known to this agency, and you do not manage its connection" in page
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
        assert account.access_token.reveal() == token_before
        assert access_table(users["viewonly@alpha.example"]) == {account.pk: frozenset({Perm.VIEW})}
        assert not AuditLog.objects.filter(action="account.reconnected").exists()

    # And the manager who manages it reconnects it, keeping exactly the access they had
    page = land(manager, finish(consent(start_connect(manager), creator=PUBLIC_CREATOR))[1])
    assert f"Reconnected {account}" in page
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
        assert account.access_token.reveal() != token_before
        assert access_table(users["manages@alpha.example"]) == {
            account.pk: frozenset({Perm.VIEW, Perm.MANAGE})
        }


def test_disconnecting_asks_first_and_takes_waiting_posts_off_the_schedule(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a connected account with one scheduled post, one waiting for approval and one published
    land(owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1])
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
        scheduled = PostFactory(
            account=account, caption="Friday latte art", review_outcome="approved", reviewed_at=timezone.now()
        )
        waiting = PostFactory(account=account, caption="Menu teaser", status=PostStatus.PENDING_APPROVAL)
        done = PostFactory(
            account=account,
            caption="Old news",
            status=PostStatus.PUBLISHED,
            publish_id="v_pub~old",
            published_at=timezone.now(),
        )
        job_set(post_id=scheduled.pk, kind=JobKind.PUBLISH, due_at=scheduled.scheduled_at)

    # When the owner presses Disconnect, they are asked first, with the posts it takes off the schedule
    asked = owner.post(f"/accounts/{account.pk}/disconnect/").content.decode()
    assert f"Disconnect {account}?" in asked
    assert "2 posts scheduled or waiting for approval go back to drafts" in asked
    assert "Friday latte art" in asked and "Menu teaser" in asked and "Old news" not in asked
    with schema_context(alpha.schema_name):
        assert TikTokAccount.objects.filter(pk=account.pk).exists()  # nothing happened yet
    assert not any(c["endpoint"] == "revoke" for c in tiktok.calls)

    # And when they confirm
    page = owner.post(f"/accounts/{account.pk}/disconnect/", {"confirm": "yes"}, follow=True).content.decode()

    # Then the waiting posts are drafts that say why, with no publish job left; the published one stays
    assert "2 waiting posts went back to drafts." in page
    with schema_context(alpha.schema_name):
        for post in (scheduled, waiting):
            post.refresh_from_db()
            assert post.status == PostStatus.DRAFT
            assert "was disconnected on" in post.last_error_message
            assert "Connect the account again, then schedule the post." in post.last_error_message
            assert post.review_outcome == ""  # an earlier approval no longer stands
        assert Post.objects.get(pk=done.pk).status == PostStatus.PUBLISHED
        assert AuditLog.objects.filter(action="post.unscheduled").count() == 2
    assert not DueJob.objects.filter(post_id__in=[scheduled.pk, waiting.pk]).exists()
    detail = owner.get(f"/posts/{scheduled.pk}/").content.decode()
    assert "was disconnected on" in detail and "Approved by" not in detail
    # and the dashboard lists them under what needs attention
    home = owner.get("/").content.decode()
    attention = home[home.index('id="attention-heading"') :]
    assert "Friday latte art" in attention and "Menu teaser" in attention


def test_a_disconnected_account_is_brought_back_only_by_someone_who_managed_it(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given an account the owner connected, then disconnected
    land(owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1])
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
    owner.post(f"/accounts/{account.pk}/disconnect/", {"confirm": "yes"})

    # When a manager who was never given it goes through TikTok's consent for the same creator
    stranger = _manager(alpha, "stranger@alpha.example")
    page = land(stranger, finish(consent(start_connect(stranger), creator=PUBLIC_CREATOR))[1])

    # Then it stays removed, and they hold nothing on it
    from apps.accounts.permissions import access_table

    assert "already known to this agency, and you do not manage its connection" in page
    with schema_context(alpha.schema_name):
        assert TikTokAccount.all_objects.get(pk=account.pk).is_deleted
        assert access_table(User.objects.get(email="stranger@alpha.example")) == {}
    # And the owner brings it back
    assert f"Reconnected {account}" in land(
        owner, finish(consent(start_connect(owner), creator=PUBLIC_CREATOR))[1]
    )
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.all_objects.get(pk=account.pk).is_deleted


# --- A connection belongs to the browser and the person who started it ---


def test_a_consent_link_opened_by_someone_else_stores_nothing(
    alpha: Agency, beta: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given the owner starts a connection and sends TikTok's consent link to a creator
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR)
    location = finish(callback)[1]

    # When the creator's browser (signed in nowhere), a colleague signed in to the same agency,
    # and the same person signed in to another agency each arrive with TikTok's answer
    colleague = _manager(alpha, "colleague@alpha.example")
    same_email_elsewhere = client_for(beta)
    same_email_elsewhere.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    pages = [
        land(client_for(alpha), location, status=400),
        land(colleague, location, status=400),
        land(same_email_elsewhere, location, status=400),
    ]

    # Then each is told why, TikTok is never asked for the tokens, and no agency holds the account
    for page in pages:
        assert "started by someone else or in another browser, so nothing was connected" in page
    assert not [c for c in tiktok.calls if c["endpoint"] == "token"]
    for agency in (alpha, beta):
        with schema_context(agency.schema_name):
            assert not TikTokAccount.all_objects.filter(open_id=PUBLIC_CREATOR).exists()
    assert not TikTokRoute.objects.filter(open_id=PUBLIC_CREATOR).exists()

    # And the owner, in the browser that started it, still finishes it
    assert "Connected @" in land(owner, location)


def test_the_fake_tiktok_holds_the_exchange_to_its_pkce_challenge(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a consent whose authorize URL had its challenge swapped for another verifier's
    authorize_url = start_connect(owner)
    challenge = parse_qs(urlsplit(authorize_url).query)["code_challenge"][0]
    other = hashlib.sha256(b"x" * 64).hexdigest()
    callback = consent(authorize_url.replace(challenge, other), creator=PUBLIC_CREATOR)

    # When the owner's browser finishes it
    page = land(owner, finish(callback)[1])

    # Then TikTok refuses the code (our verifier does not match) and nothing is connected
    assert "TikTok refused to renew this account's authorisation" not in page
    assert "TikTok did not complete the connection" in page
    assert [c["status"] for c in tiktok.calls if c["endpoint"] == "token"] == [400]
    with schema_context(alpha.schema_name):
        assert not TikTokAccount.all_objects.exists()


def test_tiktoks_error_description_is_never_shown(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    # Given TikTok's answer carries an error and a description anyone could have written
    authorize_url = start_connect(owner)
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    callback = "http://localhost:8000/oauth/tiktok/callback/?" + urlencode(
        {"error": "invalid_scope", "error_description": "Call +1 555 0100 to unlock", "state": state}
    )

    # When the owner's browser comes back with it
    page = land(owner, finish(callback)[1])

    # Then our own sentence for the code is shown, never TikTok's text
    assert "TikTok refused the permissions Postline asked for (invalid_scope)" in page
    assert "555 0100" not in page

    # And an unknown code gets a plain sentence, nothing of TikTok's
    authorize_url = start_connect(owner)
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    callback = "http://localhost:8000/oauth/tiktok/callback/?" + urlencode(
        {"error": "<b>weird</b>", "error_description": "Visit evil.example", "state": state}
    )
    page = land(owner, finish(callback)[1])
    assert "TikTok could not connect the account. Nothing was connected" in page
    assert "evil.example" not in page and "weird" not in page


def test_a_result_message_from_another_connection_is_not_shown(alpha: Agency, owner: Client) -> None:
    # Given an outcome message signed by Postline for someone else's connection (once readable
    # by anyone with the link, in any agency)
    forged = signing.dumps(
        {"l": "success", "m": "Connected @someone-elses-client."},
        salt="postline.tiktok.oauth-result",
        compress=True,
    )

    # When the owner opens it on their agency
    response = owner.get(f"/accounts/connected/?r={forged}", follow=True)

    # Then they never see it
    assert "someone-elses-client" not in response.content.decode()


def test_only_the_posting_scopes_make_a_working_account_whose_analytics_say_why(
    alpha: Agency, owner: Client, tiktok: FakeTikTok, settings: Any
) -> None:
    # Given a TikTok app offered only the posting scopes (TIKTOK_SCOPES from the environment)
    settings.TIKTOK_SCOPES = ["user.info.basic", "video.publish", "video.upload"]
    authorize_url = start_connect(owner)
    assert parse_qs(urlsplit(authorize_url).query)["scope"] == ["user.info.basic,video.publish,video.upload"]

    # When the owner connects an account with them
    page = land(owner, finish(consent(authorize_url, creator=PUBLIC_CREATOR))[1])

    # Then it is connected, says which scopes it granted, and its analytics explain what is missing
    assert "Connected " in page and "It can post" in page
    with schema_context(alpha.schema_name):
        account = TikTokAccount.objects.get(open_id=PUBLIC_CREATOR)
        assert account.status == AccountStatus.ACTIVE
        assert account.granted_scopes == ["user.info.basic", "video.publish", "video.upload"]
    listing = owner.get("/accounts/").content.decode()
    assert "user.info.basic, video.publish, video.upload" in listing
    analytics = owner.get("/analytics/").content.decode()
    assert "Analytics are unavailable for" in analytics
    assert "user.info.stats" in analytics and "video.list" in analytics
    assert "reconnect" in analytics.lower()
    # and no Display API call was made that the grant does not allow
    assert all(c["status"] == 200 for c in tiktok.calls if c["endpoint"] in ("user_info", "video_list"))


def test_a_grant_without_an_analytics_scope_still_connects(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    callback = consent(start_connect(owner), creator=PUBLIC_CREATOR, drop_scopes=("video.list",))
    page = land(owner, finish(callback)[1])
    assert "It can post; its analytics stay unavailable without video.list" in page
    with schema_context(alpha.schema_name):
        assert TikTokAccount.objects.get(open_id=PUBLIC_CREATOR).status == AccountStatus.ACTIVE


def test_a_post_page_shows_our_sentence_for_a_refused_call_not_tiktoks_text(
    alpha: Agency, owner: Client
) -> None:
    # Given a token refresh TikTok refused with a description of its own
    with schema_context(alpha.schema_name):
        post = PostFactory(status=PostStatus.FAILED)
        PublishAttempt.objects.create(
            post=post,
            attempt_number=1,
            kind=AttemptKind.TOKEN_REFRESH,
            started_at=timezone.now(),
            finished_at=timezone.now(),
            outcome=AttemptOutcome.NEEDS_REAUTH,
            http_status=400,
            error_code="invalid_grant",
            error_message="Refresh token revoked. Call +1 555 0100 to restore it.",
        )

    # When someone opens the post's page
    page = owner.get(f"/posts/{post.pk}/").content.decode()

    # Then the attempt reads as our sentence, with TikTok's code for support, never TikTok's text
    assert "TikTok refused to renew this account&#x27;s authorisation" in page
    assert "invalid_grant" in page and "555 0100" not in page
