"""What the fake TikTok remembers and how it answers, independent of HTTP.

One `FakeState` holds every token, authorization code, publish, armed fault and recorded call
behind one re-entrant lock; the threaded HTTP server (server.py) only parses requests, calls these
methods and writes what they return. Errors are exceptions carrying TikTok's status and code:
`ApiError` for the enveloped data endpoints, `OAuthError` for the flat OAuth ones, `PageError` for
the authorize page.

Time comes from an injectable clock (`time.time` by default), so token lifetimes, the rolling 24-hour
post count and the processing timeline can all be driven by a test.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from .creators import CREATORS, CREATORS_BY_OPEN_ID, FakeCreator
from .media import KEEP_BYTES
from .media import fail_reason as video_fail_reason
from .rules import (
    SCOPES,
    USER_FIELD_SCOPES,
    VIDEO_CONTENT_TYPES,
    VIDEO_FIELDS,
    ChunkPlan,
    PrivacyMismatch,
    RuleError,
    check_photo_post_info,
    check_photo_source,
    check_post_info,
    chunk_plan,
)

PKCE_CHALLENGE = re.compile(r"[0-9a-f]{64}")
PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")

ENDPOINTS = (
    "authorize",
    "token",
    "revoke",
    "user_info",
    "creator_info",
    "init",
    "inbox_init",
    "content_init",
    "upload",
    "status",
    "video_list",
    "video_query",
)
OAUTH_ENDPOINTS = frozenset({"token", "revoke"})
BEARER_ENDPOINTS = frozenset(
    {"user_info", "creator_info", "init", "inbox_init", "content_init", "status", "video_list", "video_query"}
)
CREATE_POST_ENDPOINTS = frozenset({"init", "inbox_init", "content_init"})

FAULT_KINDS = (
    "error",
    "http_429",
    "http_5xx",
    "slow",
    "slow_receive",
    "drop",
    "timeout",
    "spam_risk",
    "expired_token",
    "fail_processing",
    "invalid_grant",
)
# Kinds that only make sense on some endpoints; the rest apply everywhere.
_FAULT_ENDPOINTS: dict[str, frozenset[str]] = {
    "spam_risk": frozenset({"init", "inbox_init", "content_init", "creator_info"}),
    "expired_token": BEARER_ENDPOINTS,
    "fail_processing": CREATE_POST_ENDPOINTS,
    "invalid_grant": frozenset({"token"}),
    "slow_receive": frozenset({"upload"}),
}
# Delays that add up instead of deciding the answer.
_PACING_KINDS = frozenset({"slow", "slow_receive"})

AUTH_CODE_TTL = 600.0
DAY = 86_400.0


class ApiError(Exception):
    """An enveloped error: HTTP `status` with `error.code` (status 200 for creator_info's refusals)."""

    def __init__(self, status: int, code: str, message: str, data: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data or {}


class OAuthError(Exception):
    """A flat OAuth error body: {"error", "error_description", "log_id"}."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class PageError(Exception):
    """The authorize request cannot be shown (bad client_key, redirect_uri, scope...): a 400 page."""


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def copy(self) -> _Hasher: ...
    def hexdigest(self) -> str: ...


@dataclass
class Config:
    client_key: str
    client_secret: str
    access_token_ttl: float
    refresh_token_ttl: float
    processing_seconds: float
    publicly_available_seconds: float
    daily_post_cap: int
    pending_share_cap: int
    upload_url_ttl: float
    verified_domains: tuple[str, ...]
    # Where upload URLs point (TikTok: https://open-upload.tiktokapis.com); empty: the API's own origin.
    upload_origin: str = ""
    # URL prefixes verified for PULL_FROM_URL (TikTok's "URL prefix" verification), besides the
    # verified_domains, taken as configured (development and the tests verify an http prefix on
    # a loopback address; TikTok itself only ever takes https).
    verified_url_prefixes: tuple[str, ...] = ()


@dataclass
class Grant:
    id: str
    open_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class AccessToken:
    value: str
    grant: Grant
    expires_at: float


@dataclass
class RefreshToken:
    value: str
    grant: Grant
    expires_at: float
    used: bool = False


@dataclass
class AuthCode:
    value: str
    open_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    expires_at: float
    code_challenge: str = ""
    used: bool = False


@dataclass(frozen=True)
class AuthorizeRequest:
    """A validated authorize query."""

    client_key: str
    redirect_uri: str
    state: str
    scopes: tuple[str, ...]
    code_challenge: str

    def hidden_fields(self) -> dict[str, str]:
        return {
            "client_key": self.client_key,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "response_type": "code",
            "requested_scope": ",".join(self.scopes),
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }


@dataclass
class Publish:
    publish_id: str
    open_id: str
    inbox: bool
    source: str
    created_at: float
    post_info: dict[str, object]
    post_id: str
    plan: ChunkPlan | None = None
    upload_id: str | None = None
    upload_expires_at: float = 0.0
    received_bytes: int = 0
    next_chunk: int = 0
    in_flight: bool = False
    content_type: str | None = None
    hasher: _Hasher = field(default_factory=hashlib.sha256)
    # The first and last bytes received (media.KEEP_BYTES each): what processing checks.
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    uploaded_at: float | None = None
    done_at: float | None = None
    public_at: float | None = None
    fail_reason: str | None = None
    sent_events: set[str] = field(default_factory=set)
    media_type: str = "VIDEO"
    # A photo post's URLs, and what each download gave (url, status, bytes, sha256, content_type).
    photo_urls: list[str] = field(default_factory=list)
    photo_cover_index: int = 0
    photo_downloads: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class UploadSlot:
    """One chunk being received: checked and reserved under the lock, read outside it."""

    publish_id: str
    index: int
    length: int
    hasher: _Hasher
    first: int = 0
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)

    def receive(self, piece: bytes, position: int) -> None:
        """One piece of the chunk, `position` bytes into it: hashed, and its bytes kept where they
        fall in the file's first or last media.KEEP_BYTES."""
        self.hasher.update(piece)
        offset = self.first + position
        if offset < KEEP_BYTES:
            self.head.extend(piece[: KEEP_BYTES - offset])
        tail_from = self.length - KEEP_BYTES  # the chunk's own last bytes
        if position + len(piece) > tail_from:
            self.tail.extend(piece[max(0, tail_from - position) :])


@dataclass
class Fault:
    id: int
    endpoint: str
    kind: str
    count: int | None
    rate: float | None
    delay: float
    status: int | str | None
    code: str | None = None
    # Seconds an http_429 answer asks to wait (its Retry-After header); None sends no header.
    retry_after: int | None = None
    fired: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class FaultAction:
    """What the faults say about one call: wait `delay` seconds, then apply `fault` (if any); an
    upload's body is read at one MB every `receive_delay` seconds."""

    delay: float = 0.0
    fault: Fault | None = None
    receive_delay: float = 0.0


@dataclass(frozen=True)
class WebhookEvent:
    event: str
    open_id: str
    content: dict[str, object]


def fault_applies(kind: str, endpoint: str) -> bool:
    allowed = _FAULT_ENDPOINTS.get(kind)
    return allowed is None or endpoint in allowed


def token_sha(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def _random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


class FakeState:
    def __init__(self, config: Config, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.seed = seed
        self.lock = threading.RLock()
        self._reset_locked()

    # --- Bookkeeping ---

    def reset(self) -> None:
        """Forget tokens, codes, publishes, calls and faults; post counts start over."""
        with self.lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        now = self.clock()
        # Faults with a rate draw from this, so a seeded run replays the same faults.
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible fault injection, not security
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.publishes: dict[str, Publish] = {}
        self.uploads: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.next_fault_id = 1
        self.call_records: list[dict[str, object]] = []
        self.inbox_times: dict[str, list[float]] = {creator.open_id: [] for creator in CREATORS}
        # Posts "made earlier today by other tools", a few minutes apart.
        self.post_times: dict[str, list[float]] = {
            creator.open_id: [now - 600.0 * (index + 1) for index in range(creator.posts_today)]
            for creator in CREATORS
        }

    # --- Calls ---

    def call_start(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        access_token: str | None,
        open_id: str | None,
        publish_id: str | None,
        title: str | None = None,
    ) -> dict[str, object]:
        """Record a call as it arrives (status 0 until it is answered; a dropped call keeps 0).
        Create-post calls also keep the post's title."""
        record: dict[str, object] = {
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "status": 0,
            "access_token_sha": token_sha(access_token),
            "time": self.clock(),
            "publish_id": publish_id,
            "open_id": open_id,
        }
        if title is not None:
            record["title"] = title
        with self.lock:
            self.call_records.append(record)
        return record

    def call_finish(
        self, record: dict[str, object], status: int, *, publish_id: str | None, open_id: str | None
    ) -> None:
        with self.lock:
            record["status"] = status
            if publish_id and not record["publish_id"]:
                record["publish_id"] = publish_id
            if open_id and not record["open_id"]:
                record["open_id"] = open_id

    def calls(self, *, endpoint: str | None = None, open_id: str | None = None) -> list[dict[str, object]]:
        with self.lock:
            return [
                dict(record)
                for record in self.call_records
                if (endpoint is None or record["endpoint"] == endpoint)
                and (open_id is None or record["open_id"] == open_id)
            ]

    # --- Faults ---

    def add_fault(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int | None = None,
        rate: float | None = None,
        delay: float = 0.0,
        status: int | str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise ValueError(f"Unknown endpoint {endpoint!r}; expected '*' or one of {', '.join(ENDPOINTS)}.")
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}.")
        if endpoint != "*" and not fault_applies(kind, endpoint):
            raise ValueError(f"A {kind} fault cannot apply to {endpoint}.")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer.")
        if rate is not None and (isinstance(rate, bool) or not 0.0 <= float(rate) <= 1.0):
            raise ValueError("rate must be between 0 and 1.")
        if isinstance(delay, bool) or float(delay) < 0:
            raise ValueError("delay must be a non-negative number of seconds.")
        if (
            kind == "http_5xx"
            and status is not None
            and (not isinstance(status, int) or isinstance(status, bool) or not 500 <= status <= 599)
        ):
            raise ValueError("An http_5xx fault's status must be between 500 and 599.")
        if kind == "fail_processing" and status is not None and not isinstance(status, str):
            raise ValueError("A fail_processing fault's status is the fail_reason, a string.")
        if kind == "error" and (
            not code or (status is not None and (not isinstance(status, int) or not 200 <= status <= 599))
        ):
            raise ValueError("An error fault needs a code, and a status between 200 and 599 (default 400).")
        if code is not None and not isinstance(code, str):
            raise ValueError("code must be a string.")
        if retry_after is not None and (
            kind != "http_429"
            or isinstance(retry_after, bool)
            or not isinstance(retry_after, int)
            or retry_after < 0
        ):
            raise ValueError("retry_after is a non-negative whole number of seconds, for http_429 faults.")
        with self.lock:
            fault = Fault(
                id=self.next_fault_id,
                endpoint=endpoint,
                kind=kind,
                count=count,
                rate=None if rate is None else float(rate),
                delay=float(delay),
                status=status,
                code=code,
                retry_after=retry_after,
            )
            self.next_fault_id += 1
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> int:
        with self.lock:
            cleared = len(self.faults)
            self.faults.clear()
            return cleared

    def fault_list(self) -> list[dict[str, object]]:
        with self.lock:
            return [fault.as_dict() for fault in self.faults]

    def _fires(self, fault: Fault) -> bool:
        if fault.count is not None and fault.fired >= fault.count:
            return False
        if fault.rate is not None and self.rng.random() >= fault.rate:
            return False
        fault.fired += 1
        return True

    def take_fault(self, endpoint: str) -> FaultAction:
        """Which armed faults fire for this call: every firing "slow" and "slow_receive" adds its
        delay, and the first firing fault of another kind decides the answer. fail_processing is
        taken at init instead."""
        with self.lock:
            delay = receive_delay = 0.0
            chosen: Fault | None = None
            for fault in self.faults:
                if fault.kind == "fail_processing" or fault.endpoint not in (endpoint, "*"):
                    continue
                if not fault_applies(fault.kind, endpoint) or (fault.kind not in _PACING_KINDS and chosen):
                    continue
                if self._fires(fault):
                    if fault.kind == "slow":
                        delay += fault.delay
                    elif fault.kind == "slow_receive":
                        receive_delay += fault.delay
                    else:
                        chosen = fault
            return FaultAction(delay=delay, fault=chosen, receive_delay=receive_delay)

    def _take_fail_processing(self, endpoint: str) -> str | None:
        for fault in self.faults:
            if fault.kind == "fail_processing" and fault.endpoint in (endpoint, "*") and self._fires(fault):
                if isinstance(fault.status, str):
                    return fault.status
                return fault.code or "file_format_check_failed"
        return None

    # --- OAuth ---

    def authorize_request(self, params: Mapping[str, str]) -> AuthorizeRequest:
        """Validate the authorize query (or the form's hidden echo of it)."""
        if params.get("client_key", "") != self.config.client_key:
            raise PageError("Unknown client_key: this app is not registered with the fake TikTok.")
        if params.get("response_type", "code") != "code":
            raise PageError("response_type must be 'code'.")
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PageError("redirect_uri must be an absolute http(s) URL.")
        if parts.query or parts.fragment:
            raise PageError("redirect_uri must have no query and no fragment.")
        raw_scope = params.get("requested_scope") or params.get("scope", "")
        scopes = tuple(dict.fromkeys(scope.strip() for scope in raw_scope.split(",") if scope.strip()))
        if not scopes:
            raise PageError("No scope was requested.")
        unknown = [scope for scope in scopes if scope not in SCOPES]
        if unknown:
            raise PageError(f"Unknown scope: {', '.join(unknown)}.")
        # PKCE as TikTok enforces it for web apps: S256, the challenge in hex (errCode 10007).
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method", "") != "S256" or not PKCE_CHALLENGE.fullmatch(challenge):
            raise PageError(
                "code_challenge (errCode 10007): send code_challenge, the hex SHA-256 of a "
                "code_verifier, and code_challenge_method=S256."
            )
        return AuthorizeRequest(
            client_key=self.config.client_key,
            redirect_uri=redirect_uri,
            state=params.get("state", ""),
            scopes=scopes,
            code_challenge=challenge,
        )

    def authorize_grant(self, request: AuthorizeRequest, open_id: str, granted: list[str]) -> str:
        """The person chose a creator and ticked some scopes: a single-use code, as a redirect target."""
        if open_id not in CREATORS_BY_OPEN_ID:
            raise PageError("Choose an account to connect.")
        scopes = tuple(scope for scope in request.scopes if scope in granted)
        code = AuthCode(
            value=secrets.token_urlsafe(24),
            open_id=open_id,
            scopes=scopes,
            redirect_uri=request.redirect_uri,
            expires_at=self.clock() + AUTH_CODE_TTL,
            code_challenge=request.code_challenge,
        )
        with self.lock:
            self.codes[code.value] = code
        query = urlencode({"code": code.value, "scopes": ",".join(scopes), "state": request.state})
        return f"{request.redirect_uri}?{query}"

    @staticmethod
    def authorize_deny(request: AuthorizeRequest) -> str:
        query = urlencode(
            {
                "error": "access_denied",
                "error_description": "The user denied the authorization request.",
                "state": request.state,
            }
        )
        return f"{request.redirect_uri}?{query}"

    def _check_client(self, form: Mapping[str, str]) -> None:
        if form.get("client_key") != self.config.client_key or not secrets.compare_digest(
            form.get("client_secret", ""), self.config.client_secret
        ):
            raise OAuthError(401, "invalid_client", "Client key or secret is wrong.")

    def _mint(self, grant: Grant) -> dict[str, object]:
        now = self.clock()
        access = AccessToken(
            value="act." + secrets.token_urlsafe(32),
            grant=grant,
            expires_at=now + self.config.access_token_ttl,
        )
        refresh = RefreshToken(
            value="rft." + secrets.token_urlsafe(32),
            grant=grant,
            expires_at=now + self.config.refresh_token_ttl,
        )
        self.access_tokens[access.value] = access
        self.refresh_tokens[refresh.value] = refresh
        return {
            "access_token": access.value,
            "expires_in": int(self.config.access_token_ttl),
            "open_id": grant.open_id,
            "refresh_token": refresh.value,
            "refresh_expires_in": int(self.config.refresh_token_ttl),
            "scope": ",".join(grant.scopes),
            "token_type": "Bearer",
        }

    def issue_tokens(
        self, open_id: str, scopes: str | list[str] | tuple[str, ...] | None = None
    ) -> dict[str, object]:
        """A token pair for a creator without the authorize page (test helper); every scope unless
        `scopes` (a list, or a comma-separated string) says otherwise."""
        if open_id not in CREATORS_BY_OPEN_ID:
            raise KeyError(f"No fake creator has open_id {open_id!r}.")
        if isinstance(scopes, str):
            scopes = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        granted = tuple(SCOPES if scopes is None else scopes)
        unknown = [scope for scope in granted if scope not in SCOPES]
        if unknown:
            raise ValueError(f"Unknown scope: {', '.join(unknown)}.")
        with self.lock:
            return self._mint(Grant(id=secrets.token_hex(8), open_id=open_id, scopes=granted))

    def token(self, form: Mapping[str, str]) -> dict[str, object]:
        """POST /v2/oauth/token/: exchange a code, or rotate a refresh token."""
        grant_type = form.get("grant_type", "")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(
                400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token."
            )
        self._check_client(form)
        with self.lock:
            now = self.clock()
            if grant_type == "authorization_code":
                value = form.get("code", "")
                if not value:
                    raise OAuthError(400, "invalid_request", "code is required.")
                code = self.codes.get(value)
                if code is None or code.used or code.expires_at <= now:
                    raise OAuthError(
                        400, "invalid_grant", "The authorization code is invalid, used or expired."
                    )
                if form.get("redirect_uri", "") != code.redirect_uri:
                    raise OAuthError(
                        400, "invalid_grant", "redirect_uri does not match the authorize request."
                    )
                verifier = form.get("code_verifier", "")
                if not PKCE_VERIFIER.fullmatch(verifier):
                    raise OAuthError(
                        400, "invalid_request", "code_verifier is required: 43-128 of [A-Za-z0-9-._~]."
                    )
                if not secrets.compare_digest(
                    hashlib.sha256(verifier.encode()).hexdigest(), code.code_challenge
                ):
                    raise OAuthError(400, "invalid_grant", "code_verifier does not match the code_challenge.")
                code.used = True
                return self._mint(Grant(id=secrets.token_hex(8), open_id=code.open_id, scopes=code.scopes))
            value = form.get("refresh_token", "")
            if not value:
                raise OAuthError(400, "invalid_request", "refresh_token is required.")
            refresh = self.refresh_tokens.get(value)
            if refresh is None or refresh.used or refresh.grant.revoked or refresh.expires_at <= now:
                raise OAuthError(
                    400, "invalid_grant", "The refresh token is invalid, already used or expired."
                )
            # Rotation: the refresh token just used stops working.
            refresh.used = True
            return self._mint(refresh.grant)

    def revoke(self, form: Mapping[str, str]) -> None:
        """POST /v2/oauth/revoke/: the token's whole grant stops working (unknown tokens are ignored)."""
        self._check_client(form)
        value = form.get("token", "")
        if not value:
            raise OAuthError(400, "invalid_request", "token is required.")
        with self.lock:
            known: AccessToken | RefreshToken | None = self.access_tokens.get(
                value
            ) or self.refresh_tokens.get(value)
            if known is not None:
                known.grant.revoked = True

    def expire_access_token(self, value: str) -> None:
        with self.lock:
            token = self.access_tokens.get(value)
            if token is None:
                raise KeyError("Unknown access token.")
            token.expires_at = min(token.expires_at, self.clock() - 1.0)

    def open_id_for_token(self, value: str | None) -> str | None:
        """Whose token this is, valid or not (to label recorded calls)."""
        if not value:
            return None
        with self.lock:
            token: AccessToken | RefreshToken | None = self.access_tokens.get(
                value
            ) or self.refresh_tokens.get(value)
            if token is not None:
                return token.grant.open_id
            code = self.codes.get(value)
            return code.open_id if code else None

    def authenticate(self, value: str | None, scopes: tuple[str, ...]) -> Grant:
        """The grant behind a bearer token that holds one of `scopes`, or a 401."""
        with self.lock:
            token = self.access_tokens.get(value or "")
            if token is None or token.grant.revoked or token.expires_at <= self.clock():
                raise ApiError(
                    401, "access_token_invalid", "The access token is invalid or not found in the request."
                )
            if not any(scope in token.grant.scopes for scope in scopes):
                raise ApiError(
                    401,
                    "scope_not_authorized",
                    f"The user did not authorize the scope required: {scopes[0]}.",
                )
            return token.grant

    # --- Display API ---

    def user_info(self, grant: Grant, fields_param: str | None, origin: str) -> dict[str, object]:
        fields = [name.strip() for name in (fields_param or "").split(",") if name.strip()]
        if not fields:
            raise ApiError(400, "invalid_params", "fields is required.")
        unknown = [name for name in fields if name not in USER_FIELD_SCOPES]
        if unknown:
            raise ApiError(400, "invalid_params", f"Unknown fields: {', '.join(unknown)}.")
        missing = sorted({USER_FIELD_SCOPES[name] for name in fields} - set(grant.scopes))
        if missing:
            raise ApiError(
                401, "scope_not_authorized", f"The user did not authorize the scope required: {missing[0]}."
            )
        creator = CREATORS_BY_OPEN_ID[grant.open_id]
        with self.lock:
            video_count = len(self._videos_locked(creator, origin))
        values: dict[str, object] = {
            "open_id": creator.open_id,
            "union_id": creator.union_id,
            "avatar_url": creator.avatar_url(origin),
            "avatar_url_100": creator.avatar_url(origin),
            "avatar_large_url": creator.avatar_url(origin),
            "display_name": creator.display_name,
            "bio_description": creator.bio_description,
            "profile_deep_link": creator.profile_deep_link(),
            "is_verified": creator.is_verified,
            "username": creator.username,
            "follower_count": creator.follower_count,
            "following_count": creator.following_count,
            "likes_count": creator.likes_count,
            "video_count": video_count,
        }
        return {"user": {name: values[name] for name in fields}}

    def _videos_locked(self, creator: FakeCreator, origin: str) -> list[tuple[int, dict[str, object]]]:
        """Every video of the creator, newest first, as (create time in ms, Display API fields)."""
        rows: list[tuple[int, dict[str, object]]] = [
            (
                video.create_time * 1000,
                {
                    "id": video.id,
                    "create_time": video.create_time,
                    "title": video.title,
                    "video_description": video.title,
                    "duration": video.duration,
                    "width": video.width,
                    "height": video.height,
                    "like_count": video.like_count,
                    "comment_count": video.comment_count,
                    "share_count": video.share_count,
                    "view_count": video.view_count,
                },
            )
            for video in creator.videos
        ]
        now = self.clock()
        for publish in self.publishes.values():
            if (
                publish.open_id != creator.open_id
                or publish.inbox
                or publish.fail_reason
                or publish.done_at is None
                or publish.done_at > now
            ):
                continue
            title = str(publish.post_info.get("title", ""))
            rows.append(
                (
                    int(publish.done_at * 1000),
                    {
                        "id": publish.post_id,
                        "create_time": int(publish.done_at),
                        "title": title,
                        "video_description": title,
                        "duration": 15,
                        "width": 1080,
                        "height": 1920,
                        "like_count": 0,
                        "comment_count": 0,
                        "share_count": 0,
                        "view_count": 0,
                    },
                )
            )
        for _, video in rows:
            video_id = video["id"]
            embed_link = f"https://www.tiktok.com/player/v1/{video_id}"
            video["cover_image_url"] = f"{origin}/_fake/covers/{video_id}.svg"
            video["share_url"] = f"https://www.tiktok.com/@{creator.username}/video/{video_id}"
            video["embed_link"] = embed_link
            video["embed_html"] = f'<iframe src="{embed_link}"></iframe>'
        rows.sort(key=lambda row: row[0], reverse=True)
        return rows

    @staticmethod
    def _video_fields(fields_param: str | None) -> list[str]:
        fields = [name.strip() for name in (fields_param or "").split(",") if name.strip()]
        if not fields:
            raise ApiError(400, "invalid_params", "fields is required.")
        unknown = [name for name in fields if name not in VIDEO_FIELDS]
        if unknown:
            raise ApiError(400, "invalid_params", f"Unknown fields: {', '.join(unknown)}.")
        return fields

    def video_list(
        self, grant: Grant, fields_param: str | None, body: object, origin: str
    ) -> dict[str, object]:
        fields = self._video_fields(fields_param)
        if not isinstance(body, dict):
            body = {}
        cursor = body.get("cursor")
        max_count = body.get("max_count", 10)
        if cursor is not None and (not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0):
            raise ApiError(400, "invalid_params", "cursor must be a timestamp in milliseconds.")
        if not isinstance(max_count, int) or isinstance(max_count, bool) or not 1 <= max_count <= 20:
            raise ApiError(400, "invalid_params", "max_count must be between 1 and 20.")
        with self.lock:
            rows = self._videos_locked(CREATORS_BY_OPEN_ID[grant.open_id], origin)
        if cursor:
            rows = [row for row in rows if row[0] < cursor]
        page = rows[:max_count]
        return {
            "videos": [{name: video[name] for name in fields} for _, video in page],
            "cursor": page[-1][0] if page else (cursor or 0),
            "has_more": len(rows) > max_count,
        }

    def video_query(
        self, grant: Grant, fields_param: str | None, body: object, origin: str
    ) -> dict[str, object]:
        fields = self._video_fields(fields_param)
        filters = body.get("filters") if isinstance(body, dict) else None
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= 20
            or not all(isinstance(video_id, str) for video_id in ids)
        ):
            raise ApiError(400, "invalid_params", "filters.video_ids must be a list of 1 to 20 ids.")
        with self.lock:
            rows = self._videos_locked(CREATORS_BY_OPEN_ID[grant.open_id], origin)
        wanted = set(ids)
        return {
            "videos": [{name: video[name] for name in fields} for _, video in rows if video["id"] in wanted]
        }

    # --- Content Posting API ---

    def posts_in_last_day(self, open_id: str) -> int:
        with self.lock:
            since = self.clock() - DAY
            return sum(1 for moment in self.post_times.get(open_id, []) if moment > since)

    def creator_info(self, grant: Grant, origin: str) -> dict[str, object]:
        creator = CREATORS_BY_OPEN_ID[grant.open_id]
        data: dict[str, object] = {
            "creator_avatar_url": creator.avatar_url(origin),
            "creator_username": creator.username,
            "creator_nickname": creator.display_name,
            "privacy_level_options": list(creator.privacy_level_options),
            "comment_disabled": creator.comment_disabled,
            "duet_disabled": creator.duet_disabled,
            "stitch_disabled": creator.stitch_disabled,
            "max_video_post_duration_sec": creator.max_video_post_duration_sec,
        }
        # TikTok answers these refusals with HTTP 200: the client must read error.code.
        if creator.banned_from_posting:
            raise ApiError(
                200, "spam_risk_user_banned_from_posting", "The user is banned from posting content.", data
            )
        if self.posts_in_last_day(creator.open_id) >= self.config.daily_post_cap:
            raise ApiError(
                200, "spam_risk_too_many_posts", "The daily post cap for this user is reached.", data
            )
        return data

    def init(self, grant: Grant, body: object, *, inbox: bool, origin: str) -> dict[str, object]:
        """Direct Post (`inbox=False`) or inbox upload init: validate, count, create the publish."""
        creator = CREATORS_BY_OPEN_ID[grant.open_id]
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_param", "The request body must be a JSON object.")
        post_info: dict[str, object] = {}
        try:
            if not inbox:
                post_info = check_post_info(body.get("post_info"), creator.privacy_level_options)
            source_info = body.get("source_info")
            if not isinstance(source_info, dict):
                raise RuleError("source_info is required.")
            source = source_info.get("source")
            plan: ChunkPlan | None = None
            if source == "FILE_UPLOAD":
                plan = chunk_plan(
                    source_info.get("video_size"),
                    source_info.get("chunk_size"),
                    source_info.get("total_chunk_count"),
                )
            elif source == "PULL_FROM_URL":
                self._check_pull_url(source_info.get("video_url"))
            else:
                raise RuleError("source_info.source must be FILE_UPLOAD or PULL_FROM_URL.")
        except PrivacyMismatch as exc:
            raise ApiError(403, "privacy_level_option_mismatch", str(exc)) from exc
        except RuleError as exc:
            raise ApiError(400, "invalid_param", str(exc)) from exc

        endpoint = "inbox_init" if inbox else "init"
        with self.lock:
            now = self.clock()
            if inbox:
                pending = [moment for moment in self.inbox_times[creator.open_id] if moment > now - DAY]
                if len(pending) >= self.config.pending_share_cap:
                    raise ApiError(
                        403, "spam_risk_too_many_pending_share", "The user has too many pending inbox shares."
                    )
            else:
                if creator.banned_from_posting:
                    raise ApiError(
                        403, "spam_risk_user_banned_from_posting", "The user is banned from posting."
                    )
                if self.posts_in_last_day(creator.open_id) >= self.config.daily_post_cap:
                    raise ApiError(
                        403, "spam_risk_too_many_posts", "The daily post cap for this user is reached."
                    )
            prefix = "v_inbox_file~v2." if inbox else ("v_pub_file~v2-1." if plan else "v_pub_url~v2-1.")
            publish = Publish(
                publish_id=prefix + _random_digits(18),
                open_id=creator.open_id,
                inbox=inbox,
                source=str(source),
                created_at=now,
                post_info=post_info,
                post_id="74" + _random_digits(17),
                plan=plan,
                fail_reason=self._take_fail_processing(endpoint),
            )
            data: dict[str, object] = {"publish_id": publish.publish_id}
            if plan is not None:
                publish.upload_id = secrets.token_urlsafe(18)
                publish.upload_expires_at = now + self.config.upload_url_ttl
                self.uploads[publish.upload_id] = publish.publish_id
                upload_origin = self.config.upload_origin or origin
                data["upload_url"] = f"{upload_origin}/upload/?upload_id={publish.upload_id}"
            else:
                # The fake never fetches the URL: processing starts at once.
                self._start_processing(publish, now)
            self.publishes[publish.publish_id] = publish
            (self.inbox_times if inbox else self.post_times)[creator.open_id].append(now)
            return data

    def content_init(self, grant: Grant, body: object, *, origin: str) -> dict[str, object]:
        """A photo post (content/init, media_type PHOTO): validate, count, create the publish. The
        server then downloads the photos (`photo_pull_targets`, `photo_pull_done`)."""
        creator = CREATORS_BY_OPEN_ID[grant.open_id]
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_param", "The request body must be a JSON object.")
        mode = body.get("post_mode")
        direct = mode == "DIRECT_POST"
        try:
            if body.get("media_type") != "PHOTO":
                raise RuleError("media_type must be PHOTO.")
            if mode not in ("DIRECT_POST", "MEDIA_UPLOAD"):
                raise RuleError("post_mode must be DIRECT_POST or MEDIA_UPLOAD.")
            post_info = check_photo_post_info(
                body.get("post_info"), creator.privacy_level_options, direct=direct
            )
            urls, cover = check_photo_source(body.get("source_info"))
        except PrivacyMismatch as exc:
            raise ApiError(403, "privacy_level_option_mismatch", str(exc)) from exc
        except RuleError as exc:
            raise ApiError(400, "invalid_param", str(exc)) from exc
        for url in urls:
            self._check_pull_url(url, kind="photo_images")
        if ("video.publish" if direct else "video.upload") not in grant.scopes:
            raise ApiError(401, "scope_not_authorized", "The token lacks the scope for this post mode.")
        with self.lock:
            now = self.clock()
            self._check_caps(creator, inbox=not direct, now=now)
            publish = Publish(
                publish_id=("p_pub_url~v2." if direct else "p_inbox_url~v2.") + _random_digits(18),
                open_id=creator.open_id,
                inbox=not direct,
                source="PULL_FROM_URL",
                created_at=now,
                post_info=dict(post_info),
                post_id="74" + _random_digits(17),
                fail_reason=self._take_fail_processing("content_init"),
                media_type="PHOTO",
                photo_urls=urls,
                photo_cover_index=cover,
            )
            self.publishes[publish.publish_id] = publish
            (self.post_times if direct else self.inbox_times)[creator.open_id].append(now)
            return {"publish_id": publish.publish_id}

    def _check_caps(self, creator: FakeCreator, *, inbox: bool, now: float) -> None:
        if inbox:
            pending = [moment for moment in self.inbox_times[creator.open_id] if moment > now - DAY]
            if len(pending) >= self.config.pending_share_cap:
                raise ApiError(
                    403, "spam_risk_too_many_pending_share", "The user has too many pending inbox shares."
                )
            return
        if creator.banned_from_posting:
            raise ApiError(403, "spam_risk_user_banned_from_posting", "The user is banned from posting.")
        if self.posts_in_last_day(creator.open_id) >= self.config.daily_post_cap:
            raise ApiError(403, "spam_risk_too_many_posts", "The daily post cap for this user is reached.")

    def photo_pull_targets(self, publish_id: str) -> list[str]:
        with self.lock:
            publish = self.publishes.get(publish_id)
            return list(publish.photo_urls) if publish is not None else []

    def photo_pull_done(
        self, publish_id: str, downloads: list[dict[str, object]], reason: str | None
    ) -> None:
        """The downloads are over: processing starts, failed with `reason` if one photo was refused."""
        with self.lock:
            publish = self.publishes.get(publish_id)
            if publish is None:
                return
            publish.photo_downloads = downloads
            publish.fail_reason = publish.fail_reason or reason
            self._start_processing(publish, self.clock())

    def _check_pull_url(self, video_url: object, kind: str = "video_url") -> None:
        if not isinstance(video_url, str):
            raise RuleError(f"source_info.{kind} is required.")
        if any(video_url.startswith(prefix) for prefix in self.config.verified_url_prefixes):
            return
        parts = urlsplit(video_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ApiError(400, "invalid_param", f"source_info.{kind} must be https URLs.")
        host = parts.hostname.lower()
        if not any(host == domain or host.endswith("." + domain) for domain in self.config.verified_domains):
            raise ApiError(
                403, "url_ownership_unverified", f"The domain {host} is not verified for this app."
            )

    def _start_processing(self, publish: Publish, now: float) -> None:
        publish.uploaded_at = now
        publish.done_at = now + self.config.processing_seconds
        # Only direct posts everyone may see are ever publicly available (after moderation).
        if not publish.inbox and publish.post_info.get("privacy_level") == "PUBLIC_TO_EVERYONE":
            publish.public_at = publish.done_at + self.config.publicly_available_seconds

    def publish_id_for_upload(self, upload_id: str | None) -> tuple[str | None, str | None]:
        with self.lock:
            publish = self.publishes.get(self.uploads.get(upload_id or "", ""))
            return (publish.publish_id, publish.open_id) if publish else (None, None)

    def upload_begin(
        self,
        upload_id: str | None,
        content_type: str | None,
        content_range: str | None,
        content_length: int | None,
    ) -> UploadSlot:
        """Check one PUT's headers against the chunk plan and reserve the chunk."""
        with self.lock:
            publish = self.publishes.get(self.uploads.get(upload_id or "", ""))
            if publish is None or publish.plan is None:
                raise ApiError(404, "not_found", "No such upload.")
            if self.clock() >= publish.upload_expires_at:
                raise ApiError(403, "upload_url_expired", "The upload URL has expired.")
            media_type = (content_type or "").split(";")[0].strip().lower()
            if media_type not in VIDEO_CONTENT_TYPES:
                raise ApiError(
                    400, "invalid_param", f"Content-Type must be one of {', '.join(VIDEO_CONTENT_TYPES)}."
                )
            first, last, total = _parse_content_range(content_range)
            plan = publish.plan
            if total != plan.video_size:
                raise ApiError(
                    400, "invalid_param", f"Content-Range total must be the video_size {plan.video_size}."
                )
            if content_length is None or content_length != last - first + 1:
                raise ApiError(400, "invalid_param", "Content-Length must be the size of the Content-Range.")
            # A 416 says how far the upload got (as a Content-Range header, see the server).
            progress: dict[str, object] = {
                "uploaded_bytes": publish.received_bytes,
                "video_size": plan.video_size,
            }
            if publish.in_flight or publish.next_chunk >= plan.count:
                raise ApiError(416, "range_not_satisfiable", "No chunk is expected now.", progress)
            expected_first, expected_last = plan.byte_range(publish.next_chunk)
            if (first, last) != (expected_first, expected_last):
                raise ApiError(
                    416,
                    "range_not_satisfiable",
                    f"Expected chunk {publish.next_chunk + 1} of {plan.count}: "
                    f"bytes {expected_first}-{expected_last}/{plan.video_size}.",
                    progress,
                )
            publish.in_flight = True
            publish.content_type = publish.content_type or media_type
            return UploadSlot(
                publish_id=publish.publish_id,
                index=publish.next_chunk,
                length=last - first + 1,
                hasher=publish.hasher.copy(),
                first=first,
            )

    def upload_commit(self, slot: UploadSlot) -> tuple[int, int]:
        """The chunk arrived whole: (206 or 201, bytes received so far)."""
        with self.lock:
            publish = self.publishes.get(slot.publish_id)
            if publish is None or publish.plan is None or publish.next_chunk != slot.index:
                raise ApiError(404, "not_found", "No such upload.")
            publish.in_flight = False
            publish.received_bytes += slot.length
            publish.next_chunk += 1
            publish.hasher = slot.hasher
            publish.head += slot.head[: KEEP_BYTES - len(publish.head)]
            publish.tail = (publish.tail + slot.tail)[-KEEP_BYTES:]
            if publish.next_chunk < publish.plan.count:
                return 206, publish.received_bytes
            if publish.fail_reason is None:
                # TikTok's processing checks the video it received (apps/fake_tiktok/media.py).
                creator = CREATORS_BY_OPEN_ID[publish.open_id]
                publish.fail_reason = video_fail_reason(
                    bytes(publish.head),
                    bytes(publish.tail),
                    publish.plan.video_size,
                    max_duration_sec=creator.max_video_post_duration_sec,
                )
            publish.head, publish.tail = bytearray(), bytearray()
            self._start_processing(publish, self.clock())
            return 201, publish.received_bytes

    def upload_abort(self, slot: UploadSlot) -> None:
        with self.lock:
            publish = self.publishes.get(slot.publish_id)
            if publish is not None and publish.next_chunk == slot.index:
                publish.in_flight = False

    def _phase(self, publish: Publish, now: float) -> str:
        if publish.done_at is None:
            return "PROCESSING_UPLOAD" if publish.source == "FILE_UPLOAD" else "PROCESSING_DOWNLOAD"
        if now < publish.done_at:
            return "PROCESSING_DOWNLOAD"
        if publish.fail_reason:
            return "FAILED"
        return "SEND_TO_USER_INBOX" if publish.inbox else "PUBLISH_COMPLETE"

    def _is_public(self, publish: Publish, now: float) -> bool:
        return (
            self._phase(publish, now) == "PUBLISH_COMPLETE"
            and publish.public_at is not None
            and now >= publish.public_at
        )

    def publish_status(self, grant: Grant, body: object) -> dict[str, object]:
        publish_id = body.get("publish_id") if isinstance(body, dict) else None
        if not isinstance(publish_id, str) or not publish_id:
            raise ApiError(400, "invalid_param", "publish_id is required.")
        with self.lock:
            publish = self.publishes.get(publish_id)
            if publish is None or publish.open_id != grant.open_id:
                raise ApiError(400, "invalid_param", "No publish with this publish_id for this user.")
            now = self.clock()
            status = self._phase(publish, now)
            data: dict[str, object] = {"status": status}
            if status == "FAILED":
                data["fail_reason"] = publish.fail_reason
            data["publicaly_available_post_id"] = [publish.post_id] if self._is_public(publish, now) else []
            if publish.source == "FILE_UPLOAD":
                data["uploaded_bytes"] = publish.received_bytes
            else:
                data["downloaded_bytes"] = 0
            return data

    def publish_snapshot(self, publish_id: str) -> dict[str, object]:
        """Everything the fake knows about one publish (test helper; not part of TikTok's API)."""
        with self.lock:
            publish = self.publishes.get(publish_id)
            if publish is None:
                raise KeyError(f"No publish {publish_id!r}.")
            now = self.clock()
            return {
                "publish_id": publish.publish_id,
                "open_id": publish.open_id,
                "inbox": publish.inbox,
                "source": publish.source,
                "post_info": dict(publish.post_info),
                "status": self._phase(publish, now),
                "fail_reason": publish.fail_reason,
                "post_id": publish.post_id,
                "publicly_available": self._is_public(publish, now),
                "video_size": publish.plan.video_size if publish.plan else None,
                "chunk_count": publish.plan.count if publish.plan else None,
                "chunks_received": publish.next_chunk,
                "received_bytes": publish.received_bytes,
                "content_type": publish.content_type,
                "media_type": publish.media_type,
                "photo_urls": list(publish.photo_urls),
                "photo_cover_index": publish.photo_cover_index,
                "photo_downloads": [dict(download) for download in publish.photo_downloads],
                "sha256": publish.hasher.hexdigest() if publish.done_at is not None else None,
                "created_at": publish.created_at,
            }

    def publish_ids(self) -> list[str]:
        with self.lock:
            return list(self.publishes)

    def due_webhooks(self) -> list[WebhookEvent]:
        """Status changes not yet announced, each marked announced."""
        events: list[WebhookEvent] = []
        with self.lock:
            now = self.clock()
            for publish in self.publishes.values():
                if publish.done_at is None or now < publish.done_at:
                    continue
                publish_type = "INBOX_SHARE" if publish.inbox else "DIRECT_PUBLISH"
                base: dict[str, object] = {"publish_id": publish.publish_id, "publish_type": publish_type}
                if "final" not in publish.sent_events:
                    publish.sent_events.add("final")
                    if publish.fail_reason:
                        events.append(
                            WebhookEvent(
                                "post.publish.failed",
                                publish.open_id,
                                {**base, "reason": publish.fail_reason},
                            )
                        )
                    elif publish.inbox:
                        events.append(WebhookEvent("post.publish.inbox_delivered", publish.open_id, base))
                    else:
                        events.append(WebhookEvent("post.publish.complete", publish.open_id, base))
                if "public" not in publish.sent_events and self._is_public(publish, now):
                    publish.sent_events.add("public")
                    events.append(
                        WebhookEvent(
                            "post.publish.publicly_available",
                            publish.open_id,
                            {**base, "post_id": publish.post_id},
                        )
                    )
        return events


def _parse_content_range(value: str | None) -> tuple[int, int, int]:
    """`bytes FIRST-LAST/TOTAL` → (first, last, total); anything else is a 400."""
    unit, _, spec = (value or "").strip().partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not (first.isdigit() and last.isdigit() and total.isdigit()):
        raise ApiError(400, "invalid_param", "Content-Range must be 'bytes FIRST-LAST/TOTAL'.")
    if int(last) < int(first):
        raise ApiError(400, "invalid_param", "Content-Range LAST must not be before FIRST.")
    return int(first), int(last), int(total)
