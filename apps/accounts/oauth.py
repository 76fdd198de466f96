"""The OAuth `state` that carries a connection attempt from an agency's subdomain to the
root-domain callback and back: signed, expiring after 10 minutes, usable once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core import signing

from apps.tiktok.ratelimit import redis_client

STATE_SALT = "postline.tiktok.oauth-state"
RESULT_SALT = "postline.tiktok.oauth-result"
STATE_MAX_AGE = 600
_NONCE_KEY = "postline:oauth-state:{}"


class StateError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class OAuthState:
    schema: str
    user_id: str


def state_issue(*, schema: str, user_id: str) -> str:
    nonce = secrets.token_urlsafe(18)
    redis_client().set(_NONCE_KEY.format(nonce), "1", ex=STATE_MAX_AGE, nx=True)
    return signing.dumps({"s": schema, "u": user_id, "n": nonce}, salt=STATE_SALT, compress=True)


def state_consume(value: str) -> OAuthState:
    """Check and spend a state; raises StateError("invalid" | "expired" | "replayed")."""
    try:
        data = signing.loads(value, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise StateError("expired", "This connection attempt took too long and expired.") from None
    except signing.BadSignature:
        raise StateError("invalid", "This connection link is not valid.") from None
    if not isinstance(data, dict) or not {"s", "u", "n"} <= data.keys():
        raise StateError("invalid", "This connection link is not valid.")
    if not redis_client().delete(_NONCE_KEY.format(data["n"])):
        raise StateError("replayed", "This connection link has already been used.")
    return OAuthState(schema=str(data["s"]), user_id=str(data["u"]))


def result_sign(level: str, message: str) -> str:
    return signing.dumps({"l": level, "m": message}, salt=RESULT_SALT, compress=True)


def result_load(value: str) -> tuple[str, str] | None:
    try:
        data = signing.loads(value, salt=RESULT_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:
        return None
    return str(data.get("l", "info")), str(data.get("m", ""))
