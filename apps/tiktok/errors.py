"""One error taxonomy for TikTok's three error shapes.

TikTok answers errors as flat OAuth bodies (`error`, `error_description`, `log_id`), as the
data endpoints' envelope (`error.code`, sometimes with HTTP 200), or as bare upload statuses.
Every one becomes a `TikTokError` whose `kind` says what to do next:

- RETRYABLE: try again later (429, 5xx, network trouble, TikTok `internal`);
- FINAL: retrying will not help; a person must change something (bad input, spam risk, ...);
- REAUTH: the account's authorisation is gone; it must be reconnected.

TikTok's `code`, `message` and `log_id` are kept for support; `human_message()` is what a
person reads.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"
    FINAL = "final"
    REAUTH = "reauth"


class TikTokError(Exception):
    kind: ErrorKind = ErrorKind.FINAL

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        log_id: str = "",
        http_status: int | None = None,
        endpoint: str = "",
        kind: ErrorKind | None = None,
        maybe_applied: bool = False,
        retry_after: float | None = None,
        received_bytes: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.log_id = log_id
        self.http_status = http_status
        self.endpoint = endpoint
        if kind is not None:
            self.kind = kind
        # True when the request may have reached TikTok and taken effect (a timeout or a
        # dropped connection after sending): the outcome is unknown, never retry blindly.
        self.maybe_applied = maybe_applied
        # Seconds TikTok asked us to wait (its Retry-After header), when it said.
        self.retry_after = retry_after
        # For an upload: how many bytes TikTok has, from its answer's Content-Range, when it said.
        self.received_bytes = received_bytes
        super().__init__(f"{endpoint or 'tiktok'}: {code} {message}".strip())

    @property
    def retryable(self) -> bool:
        return self.kind == ErrorKind.RETRYABLE

    @property
    def needs_reauth(self) -> bool:
        return self.kind == ErrorKind.REAUTH

    def human_message(self) -> str:
        return human_message(self.code, self.message)


class RateLimited(TikTokError):
    """Our own per-token limit would be exceeded: the call was not sent."""

    kind = ErrorKind.RETRYABLE

    retry_after: float

    def __init__(self, endpoint: str, retry_after: float) -> None:
        super().__init__(
            "rate_limited_locally", f"retry in {retry_after:.1f}s", endpoint=endpoint, retry_after=retry_after
        )

    def human_message(self) -> str:
        seconds = max(1, math.ceil(self.retry_after))
        when = "about a second" if seconds == 1 else f"about {seconds} seconds"
        what = _RATE_LIMITED_WHAT.get(self.endpoint, "only so many requests a minute")
        return (
            f"TikTok allows {what} for each account, and that many were just made. "
            f"Nothing was sent to TikTok; Postline can ask again in {when}."
        )


# TIKTOK_API.md, "Caps and limits" (apps/tiktok/ratelimit.py enforces them).
_RATE_LIMITED_WHAT = {
    "creator_info": "20 checks a minute of what an account may post",
    "init": "6 new posts a minute",
    "inbox_init": "6 new posts a minute",
    "content_init": "6 new posts a minute",
    "status": "30 status checks a minute",
}


class RateLimiterUnavailable(TikTokError):
    """Our shared rate limit (Redis) could not be asked: the call was not sent."""

    kind = ErrorKind.RETRYABLE

    def __init__(self, endpoint: str, detail: str = "") -> None:
        super().__init__("rate_limiter_unavailable", detail, endpoint=endpoint)

    def human_message(self) -> str:
        return "Postline could not reach its own rate limiter; nothing was sent to TikTok."


# Codes of calls that were never sent to TikTok (held back on our side).
NOT_SENT_CODES = ("rate_limited_locally", "rate_limiter_unavailable")


# Codes of the envelope (data endpoints) and of OAuth's flat errors, by kind.
_RETRYABLE_CODES = {
    "rate_limit_exceeded",
    "internal_error",
    "internal",
    "server_error",
    "temporarily_unavailable",
    "video_pull_failed",
    "photo_pull_failed",
    "network_error",
    "timeout",
}
_REAUTH_CODES = {"access_token_invalid", "scope_not_authorized", "invalid_grant", "auth_removed"}
_FINAL_CODES = {
    "invalid_param",
    "invalid_params",
    "invalid_request",
    "invalid_client",
    "invalid_scope",
    "access_denied",
    "spam_risk_too_many_posts",
    "spam_risk_user_banned_from_posting",
    "spam_risk_too_many_pending_share",
    "spam_risk_text",
    "spam_risk",
    "reached_active_user_cap",
    "unaudited_client_can_only_post_to_private_accounts",
    "url_ownership_unverified",
    "privacy_level_option_mismatch",
    "file_format_check_failed",
    "duration_check_failed",
    "frame_rate_check_failed",
    "picture_size_check_failed",
    "publish_cancelled",
    "upload_rejected",
    "upload_url_expired",
    "upload_url_untrusted",
    "upload_not_found",
}

_MESSAGES = {
    "rate_limit_exceeded": "TikTok asked us to slow down. We will try again shortly.",
    "internal_error": "TikTok had an internal problem. We will try again shortly.",
    "internal": "TikTok had an internal problem. We will try again shortly.",
    "server_error": "TikTok had a server problem. Please try again in a few minutes.",
    "temporarily_unavailable": "TikTok is temporarily unavailable. Please try again in a few minutes.",
    "network_error": "TikTok could not be reached. We will try again shortly.",
    "timeout": "TikTok did not answer in time.",
    "access_token_invalid": "TikTok no longer accepts this account's authorisation. Reconnect the account.",
    "scope_not_authorized": "The account did not grant Postline the permission this needs. Reconnect it and "
    "allow every requested permission.",
    "invalid_grant": "TikTok refused to renew this account's authorisation. Reconnect the account.",
    "auth_removed": "The creator removed Postline's access on TikTok. Reconnect the account.",
    "access_denied": "The connection was cancelled on TikTok; nothing was connected.",
    "invalid_client": "TikTok did not recognise Postline's app credentials. Contact support.",
    "spam_risk_too_many_posts": "This account has reached TikTok's daily posting limit. Try again tomorrow.",
    "spam_risk_user_banned_from_posting": "TikTok has banned this account from posting.",
    "spam_risk_too_many_pending_share": "This account already has 5 drafts waiting in its TikTok inbox. "
    "Post or delete them in TikTok first.",
    "spam_risk_text": "TikTok flagged the caption as spam. Edit the caption and try again.",
    "spam_risk": "TikTok flagged this post as spam.",
    "reached_active_user_cap": "Postline's TikTok app has reached its daily limit of posting accounts. "
    "Try again tomorrow.",
    "unaudited_client_can_only_post_to_private_accounts": "TikTok only allows private posts from this app "
    "for now. Set the post to 'Only me'.",
    "privacy_level_option_mismatch": "The chosen privacy level is no longer offered for this account. "
    "Choose another one.",
    "url_ownership_unverified": "TikTok could not verify the video's address.",
    "invalid_param": "TikTok rejected the post's settings.",
    "invalid_params": "TikTok rejected the request's settings.",
    "file_format_check_failed": "TikTok could not read the video file. Upload an MP4, MOV or WebM video.",
    "duration_check_failed": "The video is longer or shorter than TikTok allows for this account.",
    "frame_rate_check_failed": "TikTok needs a video between 23 and 60 frames per second.",
    "picture_size_check_failed": "TikTok needs a video between 360 and 4096 pixels on each side.",
    "photo_pull_failed": "TikTok could not download the photos from Postline's media address "
    "(TIKTOK_MEDIA_BASE_URL). Retry the post; if it happens again, contact support.",
    "publish_cancelled": "The post was cancelled on TikTok.",
    "upload_url_expired": "The upload took too long and TikTok's upload link expired.",
    "upload_url_untrusted": "TikTok's answer named an upload address Postline does not send videos to, so "
    "the video was not sent. Retry the post; if it happens again, contact support.",
}


def classify(code: str, http_status: int | None = None) -> ErrorKind:
    if code in _REAUTH_CODES:
        return ErrorKind.REAUTH
    if code in _RETRYABLE_CODES:
        return ErrorKind.RETRYABLE
    if code in _FINAL_CODES:
        return ErrorKind.FINAL
    if http_status is not None and (http_status == 429 or http_status >= 500):
        return ErrorKind.RETRYABLE
    if http_status == 401:
        return ErrorKind.REAUTH
    return ErrorKind.FINAL


_CODE_SHAPE = re.compile(r"[a-z0-9_.]{1,64}")


def human_message(code: str, detail: str = "") -> str:
    """Our own sentence for TikTok's code. TikTok's free text (`detail`: error_description or
    the envelope's message) is kept for support on the error, never shown: a callback's
    error_description is anyone's to write, and TikTok's own is not written for our users."""
    if code in _MESSAGES:
        return _MESSAGES[code]
    shown = f" (code {code})" if _CODE_SHAPE.fullmatch(code) else ""
    return f"TikTok refused the request{shown}. Try again; if it keeps happening, contact support."


# What the consent callback's `error` means, as (level, sentence); nothing was connected.
_OAUTH_REFUSALS = {
    "access_denied": ("warning", "You cancelled on TikTok, so no account was connected."),
    "invalid_scope": (
        "error",
        "TikTok refused the permissions Postline asked for (invalid_scope): the TikTok app does not "
        "offer all of them. Nothing was connected; the platform's TIKTOK_SCOPES must list only "
        "scopes the app has.",
    ),
    "code_challenge": (
        "error",
        "TikTok refused the connection's security check (PKCE). Nothing was connected; please try again.",
    ),
    "server_error": (
        "error",
        "TikTok had a server problem. Nothing was connected; try again in a few minutes.",
    ),
    "temporarily_unavailable": (
        "error",
        "TikTok is temporarily unavailable. Nothing was connected; try again in a few minutes.",
    ),
}


def oauth_refusal(error: str) -> tuple[str, str]:
    """The consent callback came back with `error`: what to tell the person who started it."""
    return _OAUTH_REFUSALS.get(
        error, ("error", "TikTok could not connect the account. Nothing was connected; please try again.")
    )


def from_oauth(body: dict[str, object], http_status: int, endpoint: str) -> TikTokError:
    code = str(body.get("error") or "unknown_error")
    return TikTokError(
        code,
        str(body.get("error_description") or ""),
        log_id=str(body.get("log_id") or ""),
        http_status=http_status,
        endpoint=endpoint,
        kind=classify(code, http_status),
    )


def from_envelope(error: dict[str, object], http_status: int, endpoint: str) -> TikTokError:
    code = str(error.get("code") or "unknown_error")
    return TikTokError(
        code,
        str(error.get("message") or ""),
        log_id=str(error.get("log_id") or ""),
        http_status=http_status,
        endpoint=endpoint,
        kind=classify(code, http_status),
    )


_UPLOAD_STATUSES = {
    400: ("upload_rejected", ErrorKind.FINAL, "TikTok rejected the chunk's headers."),
    403: ("upload_url_expired", ErrorKind.FINAL, "The upload URL expired."),
    404: ("upload_not_found", ErrorKind.FINAL, "TikTok has no such upload."),
    416: ("upload_range_mismatch", ErrorKind.RETRYABLE, "The chunk did not match TikTok's progress."),
    429: ("rate_limit_exceeded", ErrorKind.RETRYABLE, "Too many requests."),
}


def from_upload_status(
    http_status: int,
    endpoint: str = "upload",
    *,
    log_id: str = "",
    retry_after: float | None = None,
    received_bytes: int | None = None,
) -> TikTokError:
    code, kind, message = _UPLOAD_STATUSES.get(
        http_status,
        ("internal_error", ErrorKind.RETRYABLE, "TikTok's upload server failed.")
        if http_status >= 500
        else (f"upload_http_{http_status}", ErrorKind.FINAL, "Unexpected upload answer."),
    )
    return TikTokError(
        code,
        message,
        log_id=log_id,
        http_status=http_status,
        endpoint=endpoint,
        kind=kind,
        retry_after=retry_after,
        received_bytes=received_bytes,
    )


def fail_reason_kind(reason: str) -> ErrorKind:
    """A status/fetch `fail_reason`: `internal` and `video_pull_failed` are worth retrying."""
    return ErrorKind.RETRYABLE if reason in {"internal", "video_pull_failed"} else ErrorKind.FINAL


# Every code this module knows: the metrics label TikTok's errors by these and no others.
KNOWN_CODES = frozenset(
    {*_REAUTH_CODES, *_RETRYABLE_CODES, *_FINAL_CODES, *_MESSAGES}
    | {code for code, _kind, _message in _UPLOAD_STATUSES.values()}
)
