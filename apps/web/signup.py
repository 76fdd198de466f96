"""Self-service signup on the root domain and the one-time welcome sign-in on the new subdomain.

The root domain and an agency's subdomain share no session (each host has its own cookie and
the agency's sessions live in its schema), so signup hands the new owner over with a token:

- `agency_signup` creates the agency (tenants.services.agency_create) and, in the same
  transaction, a `WelcomeToken` row holding only the SHA-256 of a random 256-bit token, bound
  to that agency and owner, expiring after WELCOME_TOKEN_SECONDS (2 minutes by default).
- The agency starts unconfirmed (no connecting, no publishing) and a worker emails the owner a
  link to confirm their address (apps.web.email_verification), once the transaction commits.
- The browser is redirected to `<agency url>/welcome/<token>/`; `welcome_token_consume` checks
  the token belongs to the agency whose host it arrived on, is unexpired and unused, and spends
  it with one conditional UPDATE, so two concurrent uses cannot both succeed.

A token shown on another agency's host is refused without being spent: whoever holds it could
use it on the right host anyway, and the rightful owner keeps their link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.users.models import User
from apps.web.models import WelcomeToken
from apps.web.tasks import web_send_email_verification
from tenants.dramatiq import send_on_commit
from tenants.models import Agency
from tenants.services import agency_create

# Spent and expired tokens are deleted this long after they expire (they are useless by then).
_TOKEN_RETENTION = dt.timedelta(days=1)


def welcome_token_seconds() -> int:
    return int(getattr(settings, "WELCOME_TOKEN_SECONDS", 120))


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class SignupResult:
    agency: Agency
    owner: User
    welcome_url: str


def agency_signup(
    *, name: str, slug: str, owner_name: str, owner_email: str, owner_password: str
) -> SignupResult:
    """Create an agency with its owner and a one-time welcome link to sign them in on it.

    Raises ValidationError keyed by field (name, slug, owner_email, owner_password) when the
    agency cannot be created; nothing is left behind then.
    """
    try:
        with transaction.atomic():
            agency = agency_create(
                slug=slug,
                name=name,
                owner_email=owner_email,
                owner_password=owner_password,
                owner_name=owner_name.strip(),
                email_verified=False,
            )
            with schema_context(agency.schema_name):
                owner = User.objects.get(email__iexact=owner_email.strip())
                # A worker makes and emails the link to confirm the address (apps.web.email_verification).
                send_on_commit(web_send_email_verification, str(owner.pk))
            raw = welcome_token_issue(agency=agency, user=owner)
    except IntegrityError as exc:
        # Someone took the same address between the checks and the insert.
        raise ValidationError(
            {"slug": [f"The address “{slug.strip().lower()}” is already taken; choose another."]}
        ) from exc
    path = reverse("welcome", urlconf=settings.ROOT_URLCONF, kwargs={"token": raw})
    return SignupResult(agency=agency, owner=owner, welcome_url=f"{agency.url.rstrip('/')}{path}")


def welcome_token_issue(*, agency: Agency, user: User) -> str:
    """Store a new token's hash for `user` of `agency` and return the token (shown nowhere else)."""
    now = timezone.now()
    WelcomeToken.objects.filter(expires_at__lt=now - _TOKEN_RETENTION).delete()
    raw = secrets.token_urlsafe(32)
    WelcomeToken.objects.create(
        token_hash=_hash(raw),
        agency=agency,
        user_id=user.pk,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=welcome_token_seconds()),
    )
    return raw


class WelcomeTokenError(Exception):
    """The token cannot sign anyone in; `code` is one of unknown, foreign, used, expired."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _usable_token(*, agency: Agency, raw: str, now: Any) -> WelcomeToken:
    token = WelcomeToken.objects.filter(token_hash=_hash(raw)).first()
    if token is None:
        raise WelcomeTokenError("unknown", "This sign-in link is not valid.")
    if token.agency_id != agency.pk:
        raise WelcomeTokenError("foreign", "This sign-in link belongs to another agency.")
    if token.used_at is not None:
        raise WelcomeTokenError("used", "This sign-in link has already been used.")
    if token.expires_at <= now:
        raise WelcomeTokenError("expired", "This sign-in link has expired.")
    return token


def welcome_token_user(*, agency: Agency, raw: str) -> User:
    """Whom the token would sign in, without spending it (the page that asks for the click).
    Must run in `agency`'s schema. Raises WelcomeTokenError."""
    token = _usable_token(agency=agency, raw=raw, now=timezone.now())
    user = User.objects.filter(pk=token.user_id, is_active=True).first()
    if user is None:
        raise WelcomeTokenError("unknown", "This sign-in link is not valid.")
    return user


def welcome_token_consume(*, agency: Agency, raw: str) -> User:
    """Spend the token on `agency` (the host it arrived on) and return the user it signs in.

    Must run in `agency`'s schema (a request on its subdomain does). Raises WelcomeTokenError.
    """
    now = timezone.now()
    token = _usable_token(agency=agency, raw=raw, now=now)
    with transaction.atomic():
        spent = WelcomeToken.objects.filter(pk=token.pk, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now, updated_at=now
        )
        if not spent:
            raise WelcomeTokenError("used", "This sign-in link has already been used.")
        user = User.objects.filter(pk=token.user_id, is_active=True).first()
        if user is None:
            raise WelcomeTokenError("unknown", "This sign-in link is not valid.")
    return user
