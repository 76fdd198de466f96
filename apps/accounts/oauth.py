"""The OAuth `state` that carries a connection attempt from an agency's subdomain through TikTok
and back: signed, expiring after 10 minutes, usable once, and bound to the browser that started it.

Binding: starting a connection records the state's nonce in the signed-in user's session; the
root-domain callback only checks the signature and sends the browser on to the agency's subdomain,
where the exchange happens for the user the state names, in the session that holds its nonce. A
consent link forwarded to someone else (a creator, another member) arrives in a browser without
that session and stores nothing.

PKCE in TikTok's form: the verifier is derived from the nonce with a keyed HMAC (64 hex
characters, so nothing to store), the challenge is the hex SHA-256 of the verifier.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.utils.crypto import salted_hmac

from apps.tiktok.ratelimit import redis_client

STATE_SALT = "postline.tiktok.oauth-state"
PKCE_SALT = "postline.tiktok.pkce-verifier"
STATE_MAX_AGE = 600
SESSION_KEY = "tiktok_connect_nonces"
# A few connections may be under way at once in one browser (tabs); older ones are forgotten.
SESSION_MAX_PENDING = 5
_NONCE_KEY = "postline:oauth-state:{}"


class StateError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class OAuthState:
    schema: str
    user_id: str
    nonce: str

    @property
    def code_verifier(self) -> str:
        return pkce_verifier(self.nonce)


@dataclass(frozen=True)
class ConnectionStart:
    state: str
    code_challenge: str


def pkce_verifier(nonce: str) -> str:
    """43-128 characters of [A-Za-z0-9-._~]: here 64 hex digits, known only to us."""
    return salted_hmac(PKCE_SALT, nonce, algorithm="sha256").hexdigest()


def pkce_challenge(verifier: str) -> str:
    """TikTok's form: the HEX SHA-256 of the verifier (not base64url)."""
    return hashlib.sha256(verifier.encode("ascii")).hexdigest()


def state_issue(*, schema: str, user_id: str, session: Any) -> ConnectionStart:
    """Start a connection for `user_id` in `schema`, remembered in this browser's `session`."""
    nonce = secrets.token_urlsafe(18)
    redis_client().set(_NONCE_KEY.format(nonce), "1", ex=STATE_MAX_AGE, nx=True)
    pending = [n for n in session.get(SESSION_KEY, []) if isinstance(n, str)]
    session[SESSION_KEY] = [*pending, nonce][-SESSION_MAX_PENDING:]
    state = signing.dumps({"s": schema, "u": user_id, "n": nonce}, salt=STATE_SALT, compress=True)
    return ConnectionStart(state=state, code_challenge=pkce_challenge(pkce_verifier(nonce)))


def state_read(value: str) -> OAuthState:
    """Check a state's signature and age without spending it; raises StateError."""
    try:
        data = signing.loads(value, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise StateError("expired", "This connection attempt took too long and expired.") from None
    except signing.BadSignature:
        raise StateError("invalid", "This connection link is not valid.") from None
    if not isinstance(data, dict) or not {"s", "u", "n"} <= data.keys():
        raise StateError("invalid", "This connection link is not valid.")
    return OAuthState(schema=str(data["s"]), user_id=str(data["u"]), nonce=str(data["n"]))


def state_consume(value: str, *, schema: str, user_id: str, session: Any) -> OAuthState:
    """Spend a state in the browser and for the user that started it.

    Raises StateError: "invalid" | "expired" | "elsewhere" (another agency, user or browser:
    nothing is spent, so the person who started it can still finish) | "replayed"."""
    state = state_read(value)
    pending = session.get(SESSION_KEY, [])
    if state.schema != schema or state.user_id != user_id or state.nonce not in pending:
        raise StateError(
            "elsewhere",
            "This connection was started by someone else or in another browser, so nothing was "
            "connected. Whoever wants to connect an account starts from the Accounts page, signed in, "
            "and finishes in the same browser.",
        )
    # The nonce stays listed (at most a few are kept), so a replay in this browser is named so.
    if not redis_client().delete(_NONCE_KEY.format(state.nonce)):
        raise StateError("replayed", "This connection link has already been used.")
    return state
