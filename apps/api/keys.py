"""API keys: made by admins, shown once, stored as a SHA-256, expiring, revocable.

A key is `pl_<prefix>_<secret>`: the prefix (10 characters) finds the row and is what pages
show; the whole key's SHA-256 is compared in constant time. 256 bits of randomness make a
slow hash pointless (nobody guesses a key), so a plain SHA-256 is what is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, access_set
from apps.api.models import ApiKey
from apps.audit.services import audit_record
from apps.common.client_ip import client_ip
from apps.users.models import SERVICE_DOMAIN, Role, User

KEY_ROLES = (Role.ADMIN, Role.MANAGER, Role.EDITOR, Role.VIEWER)
_PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
# A key's last use is written at most this often (not on every request).
LAST_USE_EVERY = dt.timedelta(minutes=1)
# Key use is audited once per key and hour (each change it makes is audited on its own).
USE_AUDIT_EVERY = dt.timedelta(hours=1)


class ApiKeyError(Exception):
    """What an admin asked for cannot be done; the message says why."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    name: str,
    role: str,
    accounts: Iterable[TikTokAccount] = (),
    expires_at: dt.datetime | None,
    by: User,
    request: HttpRequest | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its service member; returns the key and the only copy of its secret.

    The member gets `role`'s default permissions on each of `accounts` (admin keys hold every
    account); they can be changed afterwards like anyone's, on the member's page."""
    if not by.is_agency_admin:
        raise ApiKeyError("Only owners and admins create API keys.")
    name = " ".join(name.split())
    if not name:
        raise ApiKeyError("Give the key a name that says what uses it.")
    if len(name) > 100:
        raise ApiKeyError("The name is too long: at most 100 characters.")
    if role not in KEY_ROLES:
        raise ApiKeyError("Choose what the key may do: admin, manager, editor or viewer.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiKeyError("The expiry date has passed: choose one in the future, or none.")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(10))
    raw = f"pl_{prefix}_{secrets.token_urlsafe(32)}"
    member = User.objects.create_user(
        email=f"key-{prefix}@{SERVICE_DOMAIN}", password=None, name=f"API key: {name}", role=role
    )
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=_hash(raw), member=member, created_by=by, expires_at=expires_at
    )
    for account in accounts:
        access_set(
            user=member, account=account, perms=ROLE_DEFAULTS[role], by=by, request=request, audit=False
        )
    audit_record(
        action="api_key.created",
        actor=by,
        obj=key,
        request=request,
        changes={
            "name": name,
            "role": role,
            "prefix": prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "accounts": sorted(str(a.pk) for a in accounts),
        },
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, by: User, request: HttpRequest | None = None) -> bool:
    """Revoke a key for good (its member is deactivated with it). False when it already was."""
    if not by.is_agency_admin:
        raise ApiKeyError("Only owners and admins revoke API keys.")
    locked = ApiKey.objects.select_for_update().select_related("member").get(pk=key.pk)
    if locked.revoked_at is not None:
        return False
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    locked.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
    locked.member.is_active = False
    locked.member.save(update_fields=["is_active", "updated_at"])
    audit_record(
        action="api_key.revoked", actor=by, obj=locked, request=request, changes={"prefix": locked.prefix}
    )
    return True


def api_key_authenticate(raw: str, *, request: HttpRequest | None = None) -> ApiKey | None:
    """The usable key `raw` is, or None (unknown, wrong, revoked, expired, member deactivated)."""
    # The secret may hold "_" itself (URL-safe base64): only the first two separate.
    scheme, _, rest = raw.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != "pl" or len(prefix) != 10 or not secret:
        return None
    key = ApiKey.objects.select_related("member").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    if not key.is_usable or not key.member.is_active:
        return None
    _note_use(key, request)
    return key


def _note_use(key: ApiKey, request: HttpRequest | None) -> None:
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USE_EVERY:
        return
    ip = client_ip(request) if request is not None else None
    if key.last_used_at is None or now - key.last_used_at >= USE_AUDIT_EVERY:
        audit_record(action="api_key.used", actor=key.member, obj=key, request=request, changes={})
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
    key.last_used_at, key.last_used_ip = now, ip
