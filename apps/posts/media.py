"""Inspecting uploaded videos: what the file is (by its content), how it is encoded, how long
and how large — and whether TikTok would take it.

TikTok accepts MP4, MOV and WebM holding H.264, H.265, VP8 or VP9 video at 23 to 60 frames a
second, 360 to 4096 px per side, at most 4 GB and at most the creator's maximum duration
(TIKTOK_API.md, "Caps and limits"); it refuses anything else an hour later, after the upload,
with `file_format_check_failed`, `frame_rate_check_failed`, `picture_size_check_failed` or
`duration_check_failed`. We refuse it at upload and again when the post is scheduled, with a
sentence a person can act on. The container is decided by the file's first bytes (an ISO-BMFF
`ftyp` box or a WebM EBML header), never by its name or the browser's content type; MediaInfo
(pymediainfo, its library bundled in the wheel) reads codec, frame rate, duration and frame size
from the container's headers without decoding any video, seeking as it needs: on a stored
object that is a few ranged reads. The facts are kept on the media row (`VideoFacts`), so the
check at scheduling time reads no file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any

from pymediainfo import MediaInfo

from apps.posts.models import MAX_VIDEO_BYTES

MIN_SIDE_PX = 360
MAX_SIDE_PX = 4096
MIN_DURATION_SECONDS = Decimal(1)
MIN_FRAME_RATE = Decimal(23)
MAX_FRAME_RATE = Decimal(60)
MAX_STORED_RATE = Decimal("9999.999")  # what the media row holds; anything near it is refused anyway

MP4, MOV, WEBM = "video/mp4", "video/quicktime", "video/webm"
# Enough of the file's start to find the EBML header's DocType, whatever its size encoding.
HEAD_BYTES = 256
EXTENSIONS = {MP4: ".mp4", MOV: ".mov", WEBM: ".webm"}
CONTAINER_NAMES = {MP4: "MP4", MOV: "MOV", WEBM: "WebM"}

# MediaInfo's name of a video format → how we store and name it. TikTok takes these four.
ACCEPTED_CODECS = {"AVC": "H.264", "HEVC": "H.265", "VP8": "VP8", "VP9": "VP9"}
# What WebM may carry (TikTok's WebM is Google's: VP8 or VP9).
WEBM_CODECS = frozenset({"VP8", "VP9"})

NOT_A_VIDEO = (
    "This file is not an MP4, MOV or WebM video. We check what the file contains, not its name: "
    "export the video again as MP4 and upload that."
)
UNREADABLE = (
    "We could not read this video's length and frame size. Export it again as MP4 (H.264) and upload that."
)
EXPORT_AGAIN = "Export it again as MP4 with H.264 video (most editors call it “H.264” or “High quality MP4”)."


class MediaError(Exception):
    """The upload cannot be posted to TikTok; the message says why, for a person."""


@dataclass(frozen=True)
class VideoFacts:
    """What TikTok checks about a video, as probed once and stored on its media row."""

    mime_type: str
    size_bytes: int
    duration_seconds: Decimal | None
    width: int | None
    height: int | None
    # Frames a second (average); None when the container does not say (some WebM recordings).
    frame_rate: Decimal | None
    # H.264, H.265, VP8, VP9, or MediaInfo's name of another format ("ProRes", "AV1"); "" unknown.
    codec: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]


# The facts of an accepted upload (every field known but possibly the frame rate).
VideoInfo = VideoFacts


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


def _decimal(value: Any, places: str) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number <= 0:
        return None
    return number.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def probe_video(stream: IO[bytes], *, mime_type: str, size: int) -> VideoFacts:
    """Read a video's facts from its headers (MediaInfo on a seekable stream). Unknown facts are
    None (or "" for the codec): the checks decide what that means."""
    stream.seek(0)
    try:
        info = MediaInfo.parse(stream, parse_speed=0.5)
    except Exception:  # MediaInfo's wrapper raises on input it cannot open: unreadable is the answer
        info = None
    finally:
        stream.seek(0)
    videos = info.video_tracks if info is not None else []
    if not videos:
        return VideoFacts(mime_type, size, None, None, None, None, "")
    video, general = videos[0], info.general_tracks[0] if info and info.general_tracks else None
    duration_ms = video.duration or (general.duration if general is not None else None)
    duration = _decimal(duration_ms, "0.001")
    fmt = str(video.format or "")
    return VideoFacts(
        mime_type=mime_type,
        size_bytes=size,
        duration_seconds=(duration / 1000).quantize(Decimal("0.001")) if duration is not None else None,
        width=int(video.width) if video.width else None,
        height=int(video.height) if video.height else None,
        frame_rate=min(rate, MAX_STORED_RATE) if (rate := _decimal(video.frame_rate, "0.001")) else None,
        codec=ACCEPTED_CODECS.get(fmt, fmt)[:32],
    )


def _seconds_text(seconds: Decimal) -> str:
    if seconds < 60:
        return f"{seconds.normalize():f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _fps_text(rate: Decimal) -> str:
    whole = rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return f"{whole:f}"


def video_problem(
    facts: VideoFacts,
    *,
    max_duration_seconds: int | None = None,
    account_name: str = "this account",
    strict: bool = False,
) -> str:
    """Why TikTok would refuse this video, as a sentence for a person ("" when it would take it):
    the rules of TIKTOK_API.md's "Caps and limits", checked on facts already probed.
    `max_duration_seconds` is the creator's `max_video_post_duration_sec`, when known. `strict`
    (at upload) refuses what could not be read; otherwise (a stored video whose file could not
    be probed again) only what is known is held against it."""
    if facts.size_bytes <= 0:
        return "The file is empty. Choose the video again."
    if facts.size_bytes > MAX_VIDEO_BYTES:
        return "The video is larger than TikTok's limit of 4 GB."
    if facts.mime_type not in EXTENSIONS:
        return NOT_A_VIDEO
    if strict and (facts.duration_seconds is None or not facts.width or not facts.height):
        return UNREADABLE
    if (facts.codec and facts.codec not in ACCEPTED_CODECS.values()) or (strict and not facts.codec):
        encoded = f"encoded as {facts.codec}" if facts.codec else "encoded in a way we could not recognise"
        return f"The video is {encoded}; TikTok accepts H.264, H.265, VP8 or VP9 video. {EXPORT_AGAIN}"
    if facts.mime_type == WEBM and facts.codec and facts.codec not in WEBM_CODECS:
        return (
            f"This WebM video is {facts.codec}; TikTok takes WebM only with VP8 or VP9 video. {EXPORT_AGAIN}"
        )
    if facts.frame_rate is not None and not (MIN_FRAME_RATE <= facts.frame_rate <= MAX_FRAME_RATE):
        return (
            f"The video has {_fps_text(facts.frame_rate)} frames per second; TikTok accepts 23 to 60. "
            "Export it again at 30 frames per second (or 24, 25, 50 or 60)."
        )
    if (
        facts.width
        and facts.height
        and not (MIN_SIDE_PX <= facts.width <= MAX_SIDE_PX and MIN_SIDE_PX <= facts.height <= MAX_SIDE_PX)
    ):
        return (
            f"The video is {facts.width}×{facts.height} pixels; TikTok needs between {MIN_SIDE_PX} and "  # noqa: RUF001
            f"{MAX_SIDE_PX:,} pixels on each side."
        )
    seconds = facts.duration_seconds
    if seconds is not None and seconds < MIN_DURATION_SECONDS:
        return f"The video lasts {_seconds_text(seconds)}; TikTok needs at least 1 second."
    if seconds is not None and max_duration_seconds and seconds > max_duration_seconds:
        return (
            f"The video lasts {_seconds_text(seconds)}; {account_name} can post videos of at most "
            f"{_seconds_text(Decimal(max_duration_seconds))}."
        )
    return ""


def inspect_video(file: IO[bytes], *, size: int, max_duration_seconds: int | None = None) -> VideoFacts:
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
    facts = probe_video(file, mime_type=mime_type, size=size)
    problem = video_problem(facts, max_duration_seconds=max_duration_seconds, strict=True)
    if problem:
        raise MediaError(problem)
    return facts


def video_name_for(head: bytes) -> str | None:
    """The storage name of an uploaded video, from its first bytes (None: not a video we take).
    Our own name: only the extension follows the content; the storage adds the agency."""
    mime_type = sniff_video_type(head)
    return f"posts/video/{uuid.uuid4().hex}{EXTENSIONS[mime_type]}" if mime_type else None


def duration_text(seconds: Decimal | None) -> str:
    """A duration as people read it (for templates and messages)."""
    return _seconds_text(seconds) if seconds is not None else ""
