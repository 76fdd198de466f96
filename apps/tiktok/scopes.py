"""TikTok's scopes: which ones posting needs, which ones only analytics use (TIKTOK_API.md).

Apps created in 2026 are offered Login Kit and the Content Posting API only, and asking them for
an analytics scope fails the whole consent screen (`invalid_scope`): what to ask for is the
`TIKTOK_SCOPES` setting, and an account granted only the posting scopes is a working account.
"""

from __future__ import annotations

from collections.abc import Iterable

# Without any of these an account cannot post: such a grant is refused and revoked.
POSTING_SCOPES = ("user.info.basic", "video.publish", "video.upload")
# What each analytics scope lets Postline show.
ANALYTICS_SCOPES = {
    "user.info.profile": "the account's @username",
    "user.info.stats": "follower, following, like and video counts",
    "video.list": "each video's views, likes, comments and shares",
}
KNOWN_SCOPES = (*POSTING_SCOPES, *ANALYTICS_SCOPES)

_USER_FIELDS = {
    "user.info.basic": ("open_id", "union_id", "avatar_url", "display_name"),
    "user.info.profile": ("username",),
    "user.info.stats": ("follower_count", "following_count", "likes_count", "video_count"),
}


def missing_posting_scopes(granted: Iterable[str]) -> list[str]:
    held = set(granted)
    return [scope for scope in POSTING_SCOPES if scope not in held]


def missing_analytics_scopes(granted: Iterable[str]) -> list[str]:
    held = set(granted)
    return [scope for scope in ANALYTICS_SCOPES if scope not in held]


def user_fields(granted: Iterable[str]) -> str:
    """The user-info fields a token with these scopes may ask for (asking for more is a 401)."""
    held = set(granted)
    return ",".join(name for scope, names in _USER_FIELDS.items() if scope in held for name in names)
