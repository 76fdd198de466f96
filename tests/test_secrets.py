"""Tokens are encrypted at rest, rotatable, and never shown."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from apps.accounts.models import TikTokAccount
from apps.common.crypto import DecryptionError, Secret
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import TikTokAccountFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_tokens(account: TikTokAccount) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM accounts_tiktokaccount WHERE id = %s", [account.pk]
        )
        return cursor.fetchone()


def test_tokens_are_stored_as_ciphertext_and_read_back(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(access_token="act.plain-access", refresh_token="rft.plain-refresh")
    access_raw, refresh_raw = raw_tokens(account)
    assert "plain-access" not in access_raw and "plain-refresh" not in refresh_raw
    assert access_raw.startswith("gAAAA")  # a Fernet token

    fresh = TikTokAccount.objects.get(pk=account.pk)
    assert fresh.access_token.reveal() == "act.plain-access"
    assert fresh.refresh_token.reveal() == "rft.plain-refresh"


def test_tokens_never_print_themselves(in_alpha: Agency, caplog: pytest.LogCaptureFixture) -> None:
    account = TikTokAccount.objects.get(pk=TikTokAccountFactory(access_token="act.never-shown").pk)
    logging.getLogger("postline.test").warning(
        "account %s token %s %r", account, account.access_token, account
    )
    assert "never-shown" not in caplog.text
    assert "never-shown" not in repr(account.__dict__)
    assert "never-shown" not in f"{account.access_token} {account.access_token!r}"


def test_agency_admin_shows_token_status_never_tokens(alpha: Agency, in_alpha: Agency) -> None:
    account = TikTokAccountFactory(access_token="act.admin-hidden", refresh_token="rft.admin-hidden")
    client = client_for(alpha)
    client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD})
    listing = client.get("/admin/accounts/tiktokaccount/")
    detail = client.get(f"/admin/accounts/tiktokaccount/{account.pk}/change/")
    assert listing.status_code == detail.status_code == 200
    assert b"Valid" in listing.content  # the token-status column
    for page in (listing, detail):
        assert b"admin-hidden" not in page.content
        assert raw_tokens(account)[0].encode() not in page.content


def test_rotation_reencrypts_and_old_keys_can_then_be_dropped(in_alpha: Agency) -> None:
    # Given a token encrypted with the old key
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        account = TikTokAccountFactory(access_token="act.rotate-me", refresh_token="")
    before, _ = raw_tokens(account)

    # When a new key is put first and the command runs
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = io.StringIO()
        call_command("rotate_encryption_keys", stdout=out)
    after, refresh_after = raw_tokens(account)

    # Then the ciphertext changed, the empty token stayed empty, and the new key alone opens it
    assert after != before
    assert refresh_after == ""
    assert "alpha: 1 secret(s) re-encrypted" in out.getvalue()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert TikTokAccount.objects.get(pk=account.pk).access_token.reveal() == "act.rotate-me"
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]), pytest.raises(DecryptionError):
        TikTokAccount.objects.get(pk=account.pk)


def test_wrong_or_missing_key_fails_loudly(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(access_token="act.locked")
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(DecryptionError, match="cannot be decrypted"),
    ):
        TikTokAccount.objects.get(pk=account.pk)
    with override_settings(FIELD_ENCRYPTION_KEYS=[]), pytest.raises(ImproperlyConfigured, match="empty"):
        TikTokAccount.objects.get(pk=account.pk)
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=["not-a-key"]),
        pytest.raises(ImproperlyConfigured, match="Fernet"),
    ):
        TikTokAccount.objects.get(pk=account.pk)


def test_rotation_with_a_missing_key_changes_nothing(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(access_token="act.keep")
    before = raw_tokens(account)
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(Exception, match="could not be rotated"),
    ):
        call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert raw_tokens(account) == before
    assert TikTokAccount.objects.get(pk=account.pk).access_token == Secret("act.keep")


def test_rotation_says_how_many_values_are_still_under_an_old_key(in_alpha: Agency) -> None:
    # Given two tokens under the old key and one under the new one
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        TikTokAccountFactory(access_token="act.old-1", refresh_token="rft.old-2")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        TikTokAccountFactory(access_token="act.new-1", refresh_token="")

        # When the operator checks before rotating, they are told what still needs the old key
        out = io.StringIO()
        call_command("rotate_encryption_keys", "--check", stdout=out)
        assert "alpha: 1 under the first key, 2 under an old key" in out.getvalue()
        assert "2 secret(s) still under an old key (in alpha" in out.getvalue()

        # And after rotating, that none is left, so the old key can go
        out = io.StringIO()
        call_command("rotate_encryption_keys", stdout=out)
    assert "alpha: 3 secret(s) re-encrypted; 0 still under an old key" in out.getvalue()
    assert "0 secret(s) still under an old key: the old keys can be removed" in out.getvalue()
