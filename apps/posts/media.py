"""Inspecting uploaded videos: what the file is (by its content), how long and how large.

TikTok accepts MP4, MOV and WebM, 360 to 4096 px per side, at most 4 GB and at most the
creator's maximum duration (TIKTOK_API.md, "Caps and limits"). We refuse anything else at
upload, with a message a person can act on, instead of learning it from TikTok an hour
later. The type is decided by the file's first bytes (an ISO-BMFF `ftyp` box or a WebM
EBML header), never by its name or the browser's content type; hachoir reads duration and
frame size from the container's headers without decoding any video.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any

import hachoir.core.config as hachoir_config
from hachoir.metadata import extractMetadata
from hachoir.parser.container import MkvFile, MP4File
from hachoir.stream import InputIOStream

from apps.posts.models import MAX_VIDEO_BYTES

hachoir_config.quiet = True  # hachoir prints parser warnings to stderr otherwise

MIN_SIDE_PX = 360
MAX_SIDE_PX = 4096
MIN_DURATION_SECONDS = Decimal(1)

MP4, MOV, WEBM = "video/mp4", "video/quicktime", "video/webm"
# Enough of the file's start to find the EBML header's DocType, whatever its size encoding.
HEAD_BYTES = 256
EXTENSIONS = {MP4: ".mp4", MOV: ".mov", WEBM: ".webm"}

NOT_A_VIDEO = (
    "This file is not an MP4, MOV or WebM video. We check what the file contains, not its name: "
    "export the video again as MP4 and upload that."
)


class MediaError(Exception):
    """The upload cannot be posted to TikTok; the message says why, for a person."""


@dataclass(frozen=True)
class VideoInfo:
    mime_type: str
    size_bytes: int
    duration_seconds: Decimal
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]


def sniff_video_type(head: bytes) -> str | None:
    """The video MIME type the first bytes announce, or None.

    ISO base media files (MP4, MOV) start with an `ftyp` box whose major brand says which;
    WebM is Matroska with the DocType "webm" in its EBML header (plain Matroska, .mkv, is
    not accepted by TikTok).
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return MOV if head[8:12] == b"qt  " else MP4
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"\x42\x82" in head[:HEAD_BYTES]:
        doc_type_at = head.index(b"\x42\x82")
        if b"webm" in head[doc_type_at : doc_type_at + 16]:
            return WEBM
    return None


def _read_metadata(stream: IO[bytes], mime_type: str) -> tuple[timedelta | None, int | None, int | None]:
    stream.seek(0)
    source = InputIOStream(stream, source="upload", tags=[])
    try:
        parser = MP4File(source) if mime_type in (MP4, MOV) else MkvFile(source)
        if parser.validate() is not True:
            return None, None, None
        metadata = extractMetadata(parser)
    except Exception:  # hachoir raises all kinds of errors on malformed input: unreadable is the answer
        return None, None, None
    if metadata is None:
        return None, None, None
    groups: list[Any] = [metadata, *getattr(metadata, "iterGroups", list)()]
    duration = width = height = None
    for group in groups:
        # hachoir's get() raises when its default is None: 0 means "not there".
        duration = duration or group.get("duration", 0) or None
        width = width or group.get("width", 0) or None
        height = height or group.get("height", 0) or None
    return duration, width, height


def _seconds_text(seconds: Decimal) -> str:
    if seconds < 60:
        return f"{seconds.normalize():f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def inspect_video(file: IO[bytes], *, size: int, max_duration_seconds: int | None = None) -> VideoInfo:
    """Check an uploaded video against TikTok's limits; raise MediaError with the reason.

    `max_duration_seconds` is the creator's `max_video_post_duration_sec` when known.
    """
    if size <= 0:
        raise MediaError("The file is empty. Choose the video again.")
    if size > MAX_VIDEO_BYTES:
        raise MediaError("The video is larger than TikTok's limit of 4 GB.")
    file.seek(0)
    mime_type = sniff_video_type(file.read(HEAD_BYTES))
    if mime_type is None:
        raise MediaError(NOT_A_VIDEO)
    duration, width, height = _read_metadata(file, mime_type)
    file.seek(0)
    if duration is None or not width or not height:
        raise MediaError(
            "We could not read this video's length and frame size. "
            "Export it again as MP4 (H.264) and upload that."
        )
    seconds = Decimal(str(duration.total_seconds())).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    if seconds < MIN_DURATION_SECONDS:
        raise MediaError(f"The video lasts {_seconds_text(seconds)}; TikTok needs at least 1 second.")
    if max_duration_seconds and seconds > max_duration_seconds:
        raise MediaError(
            f"The video lasts {_seconds_text(seconds)}; this account can post videos of at most "
            f"{_seconds_text(Decimal(max_duration_seconds))}."
        )
    if not (MIN_SIDE_PX <= width <= MAX_SIDE_PX and MIN_SIDE_PX <= height <= MAX_SIDE_PX):
        raise MediaError(
            f"The video is {width}×{height} pixels; TikTok needs between {MIN_SIDE_PX} and "  # noqa: RUF001
            f"{MAX_SIDE_PX:,} pixels on each side."
        )
    return VideoInfo(mime_type, size, seconds, int(width), int(height))


def video_name_for(head: bytes) -> str | None:
    """The storage name of an uploaded video, from its first bytes (None: not a video we take).
    Our own name: only the extension follows the content; the storage adds the agency."""
    mime_type = sniff_video_type(head)
    return f"posts/video/{uuid.uuid4().hex}{EXTENSIONS[mime_type]}" if mime_type else None


def duration_text(seconds: Decimal | None) -> str:
    """A duration as people read it (for templates and messages)."""
    return _seconds_text(seconds) if seconds is not None else ""
