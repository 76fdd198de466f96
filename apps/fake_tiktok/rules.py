"""TikTok's validation rules for posting, as pure functions (no I/O, no Django).

Chunk arithmetic (Content Posting API, "media transfer guide"), with decimal megabytes:

- a video under 5 MB is uploaded whole: one chunk of its own size;
- otherwise every chunk is 5-64 MB, `total_chunk_count == floor(video_size / chunk_size)` (1..1000),
  and the last chunk absorbs the remainder (at most 128 MB);
- a video is at most 4 GB. The decimal reading (4,000,000,000 bytes) is the stricter one, so a client
  that passes here passes TikTok too.

TikTok's own example: 50,000,123 bytes with chunk_size 10,000,000 is 5 chunks, the last 10,000,123 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1_000_000
MIN_CHUNK_SIZE = 5 * MB
MAX_CHUNK_SIZE = 64 * MB
MAX_LAST_CHUNK_SIZE = 128 * MB
MAX_CHUNK_COUNT = 1000
MAX_VIDEO_SIZE = 4_000 * MB
MAX_TITLE_UTF16_UNITS = 2200

SCOPES = (
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.upload",
    "video.publish",
)

# Display API fields and the scope each needs.
USER_FIELD_SCOPES: dict[str, str] = {
    "open_id": "user.info.basic",
    "union_id": "user.info.basic",
    "avatar_url": "user.info.basic",
    "avatar_url_100": "user.info.basic",
    "avatar_large_url": "user.info.basic",
    "display_name": "user.info.basic",
    "bio_description": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "is_verified": "user.info.profile",
    "username": "user.info.profile",
    "follower_count": "user.info.stats",
    "following_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
}
VIDEO_FIELDS = (
    "id",
    "create_time",
    "cover_image_url",
    "share_url",
    "video_description",
    "duration",
    "height",
    "width",
    "title",
    "embed_html",
    "embed_link",
    "like_count",
    "comment_count",
    "share_count",
    "view_count",
)
VIDEO_CONTENT_TYPES = ("video/mp4", "video/quicktime", "video/webm")


class RuleError(ValueError):
    """A request breaks one of TikTok's rules; the message says which."""


class PrivacyMismatch(RuleError):
    """privacy_level is well formed but not one of the creator's privacy_level_options (403)."""


@dataclass(frozen=True)
class ChunkPlan:
    """How a FILE_UPLOAD video is cut: `count` chunks of `chunk_size`, the last one `last_size`."""

    video_size: int
    chunk_size: int
    count: int

    @property
    def last_size(self) -> int:
        return self.video_size - self.chunk_size * (self.count - 1)

    def byte_range(self, index: int) -> tuple[int, int]:
        """First and last byte (inclusive) of chunk `index` (0-based)."""
        first = index * self.chunk_size
        size = self.last_size if index == self.count - 1 else self.chunk_size
        return first, first + size - 1


def _require_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuleError(f"source_info.{name} must be an integer.")
    return value


def chunk_plan(video_size: object, chunk_size: object, total_chunk_count: object) -> ChunkPlan:
    """Check a declared chunk plan against TikTok's rules and return it."""
    size = _require_int("video_size", video_size)
    chunk = _require_int("chunk_size", chunk_size)
    count = _require_int("total_chunk_count", total_chunk_count)
    if size <= 0:
        raise RuleError("source_info.video_size must be positive.")
    if size > MAX_VIDEO_SIZE:
        raise RuleError("The video is larger than 4 GB.")
    if size < MIN_CHUNK_SIZE:
        if chunk != size or count != 1:
            raise RuleError(
                "A video under 5 MB is uploaded whole: chunk_size must equal video_size "
                "and total_chunk_count must be 1."
            )
        return ChunkPlan(video_size=size, chunk_size=chunk, count=1)
    if not MIN_CHUNK_SIZE <= chunk <= MAX_CHUNK_SIZE:
        raise RuleError("source_info.chunk_size must be between 5 MB and 64 MB.")
    expected = size // chunk
    if expected < 1:
        raise RuleError("source_info.chunk_size is larger than video_size.")
    if count != expected:
        raise RuleError(f"source_info.total_chunk_count must be floor(video_size / chunk_size) = {expected}.")
    if expected > MAX_CHUNK_COUNT:
        raise RuleError("A video is at most 1000 chunks.")
    plan = ChunkPlan(video_size=size, chunk_size=chunk, count=count)
    if plan.last_size > MAX_LAST_CHUNK_SIZE:
        raise RuleError("The last chunk would be larger than 128 MB.")
    return plan


def utf16_length(text: str) -> int:
    """Length as TikTok counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def check_post_info(post_info: object, privacy_options: tuple[str, ...]) -> dict[str, object]:
    """Validate a Direct Post `post_info`; raises RuleError (400) or PrivacyMismatch (403)."""
    if not isinstance(post_info, dict):
        raise RuleError("post_info is required.")
    privacy = post_info.get("privacy_level")
    if not isinstance(privacy, str) or not privacy:
        raise RuleError("post_info.privacy_level is required.")
    title = post_info.get("title", "")
    if not isinstance(title, str):
        raise RuleError("post_info.title must be a string.")
    if utf16_length(title) > MAX_TITLE_UTF16_UNITS:
        raise RuleError("post_info.title is longer than 2200 UTF-16 code units.")
    for name in (
        "disable_duet",
        "disable_stitch",
        "disable_comment",
        "brand_content_toggle",
        "brand_organic_toggle",
        "is_aigc",
    ):
        if name in post_info and not isinstance(post_info[name], bool):
            raise RuleError(f"post_info.{name} must be a boolean.")
    cover = post_info.get("video_cover_timestamp_ms", 0)
    if not isinstance(cover, int) or isinstance(cover, bool) or cover < 0:
        raise RuleError("post_info.video_cover_timestamp_ms must be a non-negative integer.")
    if privacy not in privacy_options:
        raise PrivacyMismatch(f"privacy_level {privacy} is not one of the creator's options.")
    if post_info.get("brand_content_toggle") is True and privacy == "SELF_ONLY":
        raise RuleError("Branded content visibility cannot be set to private (SELF_ONLY).")
    return post_info


MAX_PHOTO_TITLE_UTF16_UNITS = 90
MAX_PHOTO_DESCRIPTION_UTF16_UNITS = 4000
MAX_PHOTO_IMAGES = 35


def check_photo_post_info(
    post_info: object, privacy_options: tuple[str, ...], *, direct: bool
) -> dict[str, object]:
    """Validate a photo post's `post_info` (content/init): title at most 90 and description at
    most 4,000 UTF-16 units, privacy from the creator's options for a direct post, no duet or
    stitch (photos have neither)."""
    if post_info is None and not direct:
        return {}
    if not isinstance(post_info, dict):
        raise RuleError("post_info is required.")
    limits = (("title", MAX_PHOTO_TITLE_UTF16_UNITS), ("description", MAX_PHOTO_DESCRIPTION_UTF16_UNITS))
    for name, limit in limits:
        value = post_info.get(name, "")
        if not isinstance(value, str):
            raise RuleError(f"post_info.{name} must be a string.")
        if utf16_length(value) > limit:
            raise RuleError(f"post_info.{name} is longer than {limit} UTF-16 code units.")
    for name in ("disable_duet", "disable_stitch", "video_cover_timestamp_ms"):
        if name in post_info:
            raise RuleError(f"post_info.{name} does not apply to photo posts.")
    for name in ("disable_comment", "auto_add_music", "brand_content_toggle", "brand_organic_toggle"):
        if name in post_info and not isinstance(post_info[name], bool):
            raise RuleError(f"post_info.{name} must be a boolean.")
    if direct:
        privacy = post_info.get("privacy_level")
        if not isinstance(privacy, str) or not privacy:
            raise RuleError("post_info.privacy_level is required.")
        if privacy not in privacy_options:
            raise PrivacyMismatch(f"privacy_level {privacy} is not one of the creator's options.")
        if post_info.get("brand_content_toggle") is True and privacy == "SELF_ONLY":
            raise RuleError("Branded content visibility cannot be set to private (SELF_ONLY).")
    return post_info


def check_photo_source(source_info: object) -> tuple[list[str], int]:
    """The photo URLs and cover index of a photo post's `source_info` (PULL_FROM_URL only)."""
    if not isinstance(source_info, dict):
        raise RuleError("source_info is required.")
    if source_info.get("source") != "PULL_FROM_URL":
        raise RuleError("source_info.source must be PULL_FROM_URL for photos.")
    images = source_info.get("photo_images")
    if not isinstance(images, list) or not images or not all(isinstance(url, str) for url in images):
        raise RuleError("source_info.photo_images must be a list of URLs.")
    if len(images) > MAX_PHOTO_IMAGES:
        raise RuleError(f"source_info.photo_images holds at most {MAX_PHOTO_IMAGES} images.")
    cover = source_info.get("photo_cover_index", 0)
    if not isinstance(cover, int) or isinstance(cover, bool) or not 0 <= cover < len(images):
        raise RuleError("source_info.photo_cover_index must be the index of one of the photo_images.")
    return list(images), cover
