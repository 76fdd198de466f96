"""HTTP client for TikTok's API (TIKTOK_API.md), configured only through settings.

Every call has a timeout; per-token limits are taken from the shared RateLimiter before a
request is sent; tokens are sent in headers or form bodies and never logged. Errors are
raised as `apps.tiktok.errors.TikTokError` with their kind (retryable, final, reauth).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings

from apps.common.crypto import Secret
from apps.common.metrics import observed_call, tiktok_codes_allow
from apps.tiktok import errors
from apps.tiktok.ratelimit import RateLimiter

logger = logging.getLogger(__name__)
tiktok_codes_allow(set(errors.KNOWN_CODES))

USER_FIELDS = (
    "open_id,union_id,avatar_url,display_name,username,follower_count,following_count,likes_count,video_count"
)
VIDEO_FIELDS = "id,create_time,title,duration,like_count,comment_count,share_count,view_count,share_url"


@dataclass(frozen=True)
class TokenGrant:
    open_id: str
    access_token: Secret
    refresh_token: Secret
    expires_in: int
    refresh_expires_in: int
    scopes: frozenset[str]


@dataclass(frozen=True)
class UserInfo:
    open_id: str
    display_name: str = ""
    username: str = ""
    avatar_url: str = ""
    follower_count: int | None = None
    following_count: int | None = None
    likes_count: int | None = None
    video_count: int | None = None


@dataclass(frozen=True)
class CreatorInfo:
    nickname: str
    username: str
    avatar_url: str
    privacy_level_options: tuple[str, ...]
    comment_disabled: bool
    duet_disabled: bool
    stitch_disabled: bool
    max_video_post_duration_sec: int


@dataclass(frozen=True)
class InitResult:
    publish_id: str
    upload_url: str = ""


@dataclass(frozen=True)
class PublishStatus:
    status: str
    fail_reason: str = ""
    uploaded_bytes: int | None = None
    public_post_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Video:
    id: str
    title: str = ""
    view_count: int = 0
    like_count: int = 0
    comment_count: int = 0
    share_count: int = 0
    create_time: int | None = None


@dataclass(frozen=True)
class VideoPage:
    videos: tuple[Video, ...]
    cursor: int | None
    has_more: bool


@dataclass
class TikTokClient:
    base_url: str = field(default_factory=lambda: settings.TIKTOK_API_BASE_URL)
    auth_url: str = field(default_factory=lambda: settings.TIKTOK_AUTH_URL)
    client_key: str = field(default_factory=lambda: settings.TIKTOK_CLIENT_KEY)
    client_secret: str = field(default_factory=lambda: settings.TIKTOK_CLIENT_SECRET, repr=False)
    timeout: float = field(default_factory=lambda: float(settings.TIKTOK_TIMEOUT_SECONDS))
    upload_timeout: float = 120.0
    limiter: RateLimiter | None = field(default_factory=RateLimiter)
    # How long a call may wait for a rate-limit slot before it is deferred (RateLimited).
    max_wait: float = 0.0
    # TikTok's log id of the last answer this client received.
    last_log_id: str = field(default="", init=False, compare=False)

    # --- OAuth ---

    def authorize_url(
        self, *, redirect_uri: str, state: str, scopes: list[str] | tuple[str, ...], code_challenge: str
    ) -> str:
        """TikTok's consent page; PKCE in TikTok's form (`code_challenge` is the hex SHA-256 of
        the verifier that `exchange_code` sends)."""
        query = {
            "client_key": self.client_key,
            "scope": ",".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
            "disable_auto_auth": "1",
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.auth_url}?{urlencode(query)}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenGrant:
        return self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            endpoint="token",
        )

    def refresh(self, *, refresh_token: Secret | str) -> TokenGrant:
        return self._token(
            {"grant_type": "refresh_token", "refresh_token": _reveal(refresh_token)}, endpoint="refresh"
        )

    @observed_call("revoke")
    def revoke(self, *, token: Secret | str) -> None:
        form = {"client_key": self.client_key, "client_secret": self.client_secret, "token": _reveal(token)}
        response = self._send("revoke", "POST", "/v2/oauth/revoke/", data=form)
        body = _json(response)
        if response.status_code >= 400 or body.get("error"):
            raise errors.from_oauth(body, response.status_code, "revoke")

    @observed_call()
    def _token(self, form: dict[str, str], *, endpoint: str) -> TokenGrant:
        form = {"client_key": self.client_key, "client_secret": self.client_secret, **form}
        response = self._send(endpoint, "POST", "/v2/oauth/token/", data=form)
        body = _json(response)
        if response.status_code >= 400 or body.get("error") or not body.get("access_token"):
            raise errors.from_oauth(body, response.status_code, endpoint)
        return TokenGrant(
            open_id=str(body.get("open_id", "")),
            access_token=Secret(str(body["access_token"])),
            refresh_token=Secret(str(body.get("refresh_token") or "")),
            expires_in=int(body.get("expires_in") or 0),
            refresh_expires_in=int(body.get("refresh_expires_in") or 0),
            scopes=frozenset(s.strip() for s in str(body.get("scope", "")).split(",") if s.strip()),
        )

    # --- Data endpoints ---

    def user_info(self, *, access_token: Secret | str, fields: str = USER_FIELDS) -> UserInfo:
        data = self._data("user_info", "GET", "/v2/user/info/", access_token, params={"fields": fields})
        user = data.get("user") or {}
        return UserInfo(
            open_id=str(user.get("open_id", "")),
            display_name=str(user.get("display_name") or ""),
            username=str(user.get("username") or ""),
            avatar_url=str(user.get("avatar_url") or ""),
            follower_count=_int_or_none(user.get("follower_count")),
            following_count=_int_or_none(user.get("following_count")),
            likes_count=_int_or_none(user.get("likes_count")),
            video_count=_int_or_none(user.get("video_count")),
        )

    def creator_info(self, *, access_token: Secret | str) -> CreatorInfo:
        data = self._data(
            "creator_info", "POST", "/v2/post/publish/creator_info/query/", access_token, json_body={}
        )
        return CreatorInfo(
            nickname=str(data.get("creator_nickname") or ""),
            username=str(data.get("creator_username") or ""),
            avatar_url=str(data.get("creator_avatar_url") or ""),
            privacy_level_options=tuple(data.get("privacy_level_options") or ()),
            comment_disabled=bool(data.get("comment_disabled")),
            duet_disabled=bool(data.get("duet_disabled")),
            stitch_disabled=bool(data.get("stitch_disabled")),
            max_video_post_duration_sec=int(data.get("max_video_post_duration_sec") or 0),
        )

    def init_direct_post(
        self, *, access_token: Secret | str, post_info: dict[str, Any], source_info: dict[str, Any]
    ) -> InitResult:
        data = self._data(
            "init",
            "POST",
            "/v2/post/publish/video/init/",
            access_token,
            json_body={"post_info": post_info, "source_info": source_info},
        )
        return InitResult(publish_id=str(data["publish_id"]), upload_url=str(data.get("upload_url") or ""))

    def init_inbox(self, *, access_token: Secret | str, source_info: dict[str, Any]) -> InitResult:
        data = self._data(
            "inbox_init",
            "POST",
            "/v2/post/publish/inbox/video/init/",
            access_token,
            json_body={"source_info": source_info},
        )
        return InitResult(publish_id=str(data["publish_id"]), upload_url=str(data.get("upload_url") or ""))

    def init_photo(
        self,
        *,
        access_token: Secret | str,
        post_info: dict[str, Any],
        photo_urls: list[str],
        cover_index: int,
        inbox: bool,
    ) -> InitResult:
        """A photo post (content/init, media_type PHOTO): TikTok pulls `photo_urls` itself.
        `inbox` sends it to the creator's inbox (MEDIA_UPLOAD) instead of posting it."""
        data = self._data(
            "content_init",
            "POST",
            "/v2/post/publish/content/init/",
            access_token,
            json_body={
                "media_type": "PHOTO",
                "post_mode": "MEDIA_UPLOAD" if inbox else "DIRECT_POST",
                "post_info": post_info,
                "source_info": {
                    "source": "PULL_FROM_URL",
                    "photo_images": photo_urls,
                    "photo_cover_index": cover_index,
                },
            },
        )
        return InitResult(publish_id=str(data["publish_id"]), upload_url="")

    @observed_call("upload")
    def upload_chunk(
        self,
        *,
        upload_url: str,
        data: bytes | Iterable[bytes],
        first: int,
        last: int,
        total: int,
        content_type: str,
    ) -> int:
        """PUT one chunk (bytes, or pieces streamed as they come: the Content-Length says
        last - first + 1); returns 206 (more expected) or 201 (complete). Only to an upload URL on
        an origin the settings allow (the video and TikTok's upload token go wherever it points)."""
        if not upload_url_allowed(upload_url):
            raise errors.TikTokError(
                "upload_url_untrusted",
                "The upload URL is not on an allowed origin.",
                endpoint="upload",
                kind=errors.ErrorKind.FINAL,
            )
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(last - first + 1),
            "Content-Range": f"bytes {first}-{last}/{total}",
        }
        response = self._send(
            "upload", "PUT", upload_url, content=data, headers=headers, timeout=self.upload_timeout
        )
        if response.status_code in (201, 206):
            return response.status_code
        raise errors.from_upload_status(
            response.status_code,
            log_id=response.headers.get("x-tt-logid", ""),
            retry_after=_retry_after(response),
            received_bytes=_received_bytes(response),
        )

    def publish_status(self, *, access_token: Secret | str, publish_id: str) -> PublishStatus:
        data = self._data(
            "status",
            "POST",
            "/v2/post/publish/status/fetch/",
            access_token,
            json_body={"publish_id": publish_id},
        )
        return PublishStatus(
            status=str(data.get("status") or ""),
            fail_reason=str(data.get("fail_reason") or ""),
            uploaded_bytes=_int_or_none(data.get("uploaded_bytes")),
            public_post_ids=tuple(str(i) for i in (data.get("publicaly_available_post_id") or ())),
        )

    def video_list(
        self, *, access_token: Secret | str, cursor: int | None = None, max_count: int = 20
    ) -> VideoPage:
        body: dict[str, Any] = {"max_count": max_count}
        if cursor is not None:
            body["cursor"] = cursor
        data = self._data(
            "video_list",
            "POST",
            "/v2/video/list/",
            access_token,
            params={"fields": VIDEO_FIELDS},
            json_body=body,
        )
        return VideoPage(
            videos=tuple(_video(v) for v in data.get("videos") or ()),
            cursor=_int_or_none(data.get("cursor")),
            has_more=bool(data.get("has_more")),
        )

    def video_query(self, *, access_token: Secret | str, video_ids: list[str]) -> list[Video]:
        data = self._data(
            "video_query",
            "POST",
            "/v2/video/query/",
            access_token,
            params={"fields": VIDEO_FIELDS},
            json_body={"filters": {"video_ids": video_ids[:20]}},
        )
        return [_video(v) for v in data.get("videos") or ()]

    # --- Plumbing ---

    @observed_call()
    def _data(
        self,
        endpoint: str,
        method: str,
        path: str,
        access_token: Secret | str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if self.limiter is not None:
            self.limiter.acquire(endpoint, access_token, max_wait=self.max_wait)
        headers = {"Authorization": f"Bearer {_reveal(access_token)}"}
        if json_body is not None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        response = self._send(
            endpoint,
            method,
            path,
            params=params,
            content=json.dumps(json_body).encode() if json_body is not None else None,
            headers=headers,
        )
        body = _json(response)
        error = body.get("error") if isinstance(body.get("error"), dict) else None
        if error is None:
            raise errors.TikTokError(
                "internal_error" if response.status_code >= 500 else "unexpected_response",
                f"HTTP {response.status_code} without TikTok's error envelope",
                http_status=response.status_code,
                endpoint=endpoint,
                kind=errors.classify("", response.status_code),
            )
        if error.get("code") != "ok":
            exc = errors.from_envelope(error, response.status_code, endpoint)
            exc.retry_after = _retry_after(response)
            raise exc
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def _send(
        self, endpoint: str, method: str, url: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        if url.startswith("/"):
            url = self.base_url.rstrip("/") + url
        try:
            with httpx.Client(
                timeout=timeout or self.timeout, follow_redirects=False, verify=_ssl_context()
            ) as http:
                response = http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            # A read timeout may come after TikTok acted on the request; a connect timeout cannot.
            sent = not isinstance(exc, httpx.ConnectTimeout)
            raise errors.TikTokError(
                "timeout",
                "TikTok did not answer in time.",
                endpoint=endpoint,
                kind=errors.ErrorKind.RETRYABLE,
                maybe_applied=sent,
            ) from None
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise errors.TikTokError(
                "network_error",
                type(exc).__name__,
                endpoint=endpoint,
                kind=errors.ErrorKind.RETRYABLE,
                maybe_applied=sent,
            ) from None
        log_id = response.headers.get("x-tt-logid", "")
        logger.info("tiktok %s -> HTTP %s %s", endpoint, response.status_code, log_id)
        # Kept for the attempt row of a call that succeeded (errors carry their own).
        self.last_log_id = log_id
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{parts.hostname}{port}".lower()


def upload_url_allowed(url: str) -> bool:
    """Whether `url` is on TIKTOK_UPLOAD_ORIGINS or TIKTOK_API_BASE_URL's own origin."""
    origin = _origin(url)
    allowed = {_origin(o) for o in (*settings.TIKTOK_UPLOAD_ORIGINS, settings.TIKTOK_API_BASE_URL)}
    return bool(origin) and origin in allowed


@cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process. Building one loads the CA bundle, about 75 ms of CPU:
    doing that for every call made it the largest cost of publishing a post. A call still
    gets a connection of its own, so a dropped call can never be mistaken for another's."""
    return httpx.create_ssl_context()


def _reveal(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(min(int(value), 3600))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min(3600.0, (when - dt.datetime.now(dt.UTC)).total_seconds()))


def _received_bytes(response: httpx.Response) -> int | None:
    """What an upload answer says TikTok has: `Content-Range: bytes 0-LAST/TOTAL` → LAST + 1
    (`bytes */TOTAL`: nothing yet)."""
    value = response.headers.get("content-range", "").strip()
    match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", value)
    if match is None:
        return None
    if match.group(2) is None:
        return 0
    first, last = int(match.group(1)), int(match.group(2))
    return last + 1 if first == 0 and last >= first else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _video(raw: dict[str, Any]) -> Video:
    return Video(
        id=str(raw.get("id", "")),
        title=str(raw.get("title") or ""),
        view_count=int(raw.get("view_count") or 0),
        like_count=int(raw.get("like_count") or 0),
        comment_count=int(raw.get("comment_count") or 0),
        share_count=int(raw.get("share_count") or 0),
        create_time=_int_or_none(raw.get("create_time")),
    )
