"""What the API reads and writes (django-ninja / pydantic schemas)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ninja import Schema
from pydantic import Field, field_validator

from apps.posts.models import PrivacyLevel, PublishMode


class ErrorDetail(Schema):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(Schema):
    error: ErrorDetail


class AccountOut(Schema):
    id: uuid.UUID
    username: str
    display_name: str
    client_label: str
    status: str
    status_reason: str
    token_status: str
    granted_scopes: list[str]
    missing_analytics_scopes: list[str]
    requires_approval: bool
    posting_blocked_code: str
    follower_count: int | None
    stats_synced_at: dt.datetime | None


class PostOut(Schema):
    id: uuid.UUID
    account_id: uuid.UUID
    status: str
    media_type: str
    caption: str
    description: str
    privacy_level: str
    allow_comment: bool
    allow_duet: bool
    allow_stitch: bool
    commercial_disclosure: bool
    brand_organic: bool
    brand_content: bool
    is_aigc: bool
    mode: str
    scheduled_at: dt.datetime | None
    schedule_time_zone: str
    published_at: dt.datetime | None
    published_post_id: str
    last_error_code: str
    last_error_message: str
    review_outcome: str
    review_comment: str
    created_at: dt.datetime
    # What approving refers to: an approval names the version it saw (a post edited since is
    # not approved). Exact to the microsecond, so a string: JSON's dates stop at milliseconds.
    version: str

    @staticmethod
    def resolve_version(obj: Any) -> str:
        return str(obj.updated_at.isoformat())


class PostPage(Schema):
    items: list[PostOut]
    next_cursor: str | None


def _privacy(value: str | None) -> str | None:
    if value not in (None, "", *PrivacyLevel.values):
        raise ValueError(f"Choose one of {', '.join(PrivacyLevel.values)}, or leave it empty.")
    return value


class PostIn(Schema):
    account_id: uuid.UUID
    caption: str = Field("", max_length=10_000)
    description: str = Field("", max_length=20_000)
    privacy_level: str = Field("", description="One of the creator's options, or empty for a draft.")
    allow_comment: bool = False
    allow_duet: bool = False
    allow_stitch: bool = False
    commercial_disclosure: bool = False
    brand_organic: bool = False
    brand_content: bool = False
    is_aigc: bool = False
    mode: PublishMode = PublishMode.DIRECT
    media_id: uuid.UUID | None = None
    scheduled_at: dt.datetime | None = None
    time_zone: str = Field("", max_length=64)

    _privacy_level = field_validator("privacy_level")(_privacy)


class PostPatch(Schema):
    caption: str | None = Field(None, max_length=10_000)
    description: str | None = Field(None, max_length=20_000)
    privacy_level: str | None = None
    allow_comment: bool | None = None
    allow_duet: bool | None = None
    allow_stitch: bool | None = None
    commercial_disclosure: bool | None = None
    brand_organic: bool | None = None
    brand_content: bool | None = None
    is_aigc: bool | None = None
    mode: PublishMode | None = None
    media_id: uuid.UUID | None = None
    version: str | None = Field(
        None,
        max_length=64,
        description="The `version` you last read: if the post was saved since, 409 `post_changed` "
        "and nothing is changed. Leave it out to change the post whatever its version.",
    )

    _privacy_level = field_validator("privacy_level")(_privacy)


class ScheduleIn(Schema):
    scheduled_at: dt.datetime
    time_zone: str = Field("UTC", max_length=64)


class MarkPublishedIn(Schema):
    published_post_id: str = Field(max_length=19)


class ApproveIn(Schema):
    version: str = Field(max_length=64, description="The `version` of the post as you reviewed it.")


class RejectIn(Schema):
    comment: str = Field(max_length=5_000)


class SnapshotOut(Schema):
    date: dt.date
    followers: int
    following: int
    likes: int
    videos: int
    views: int
    comments: int
    shares: int
    follower_growth: int
    engagement_rate: float


class AuditOut(Schema):
    id: uuid.UUID
    created_at: dt.datetime
    actor_email: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    account_id: uuid.UUID | None
    ip: str | None
    changes: dict[str, object]


class AuditPage(Schema):
    items: list[AuditOut]
    next_cursor: str | None


class UploadIn(Schema):
    filename: str = Field("", max_length=255, description="The file's name, kept with the video.")
    content_type: str = Field(max_length=64, description="video/mp4, video/quicktime or video/webm.")
    size: int = Field(ge=0, description="The file's size in bytes (at most 4 GB).")
    account_id: uuid.UUID | None = Field(
        None, description="The account the video is for, if known: the key must be able to draft for it."
    )


class UploadOut(Schema):
    id: uuid.UUID
    state: str = Field(description="`receiving`, `complete` (see `media_id`) or `failed` (see `error`).")
    filename: str
    content_type: str
    size: int
    offset: int = Field(description="Bytes received so far: the next chunk starts here.")
    chunk_size: int = Field(
        description="Every chunk but the last must be a multiple of this many bytes (an S3 part)."
    )
    max_chunk_size: int = Field(description="The most bytes one chunk may carry.")
    expires_at: dt.datetime = Field(description="An upload not complete by then is abandoned.")
    media_id: uuid.UUID | None = Field(description="The video, once complete: use it in `POST /posts`.")
    error: str


class MediaOut(Schema):
    id: uuid.UUID
    kind: str
    post_id: uuid.UUID | None
    original_name: str
    mime_type: str
    size_bytes: int
    sha256: str
    duration_seconds: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    video_codec: str
    created_at: dt.datetime
