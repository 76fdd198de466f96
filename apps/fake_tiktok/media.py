"""What TikTok's processing checks in an uploaded video, as the fake does it. Standard library only.

TikTok refuses, after the upload, a video it cannot take (TIKTOK_API.md, "Caps and limits"): the
publish ends `FAILED` with `fail_reason`

- `file_format_check_failed`: not MP4/MOV (ISO-BMFF) or WebM, or its video is not H.264 (avc1,
  avc3), H.265 (hvc1, hev1), VP8 or VP9 (vp08, vp09; in WebM V_VP8, V_VP9), or no video track;
- `frame_rate_check_failed`: frames per second (samples over the track's duration, or WebM's
  DefaultDuration) below 23 or above 60;
- `picture_size_check_failed`: a side below 360 or above 4096 px;
- `duration_check_failed`: longer than the creator's `max_video_post_duration_sec`.

A frame rate the container does not state (a WebM without DefaultDuration) is not held against
the video. The fake keeps only the first and last `KEEP_BYTES` of an upload (it never stores a
video): the boxes or elements it reads must sit there, as the index of any real file does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KEEP_BYTES = 4 * 1024 * 1024
MIN_FPS, MAX_FPS = 23.0, 60.0
MIN_SIDE, MAX_SIDE = 360, 4096
MP4_CODECS = frozenset({b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09"})
WEBM_CODECS = frozenset({b"V_VP8", b"V_VP9"})


@dataclass(frozen=True)
class Probe:
    container: str  # "mp4", "webm" or ""
    codec: bytes
    width: int
    height: int
    duration: float
    fps: float | None


class _Sparse:
    """The bytes kept of an upload: its head and its tail, addressed by file offset."""

    def __init__(self, head: bytes, tail: bytes, total: int) -> None:
        self.head, self.tail, self.total = head, tail, total
        self.tail_start = total - len(tail)

    def read(self, offset: int, length: int) -> bytes | None:
        if offset + length <= len(self.head):
            return self.head[offset : offset + length]
        if offset >= self.tail_start and offset + length <= self.total:
            return self.tail[offset - self.tail_start : offset - self.tail_start + length]
        return None


def _boxes(data: _Sparse, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in [start, end)."""
    found: list[tuple[bytes, int, int]] = []
    offset = start
    while offset + 8 <= end:
        header = data.read(offset, 8)
        if header is None:
            break
        size, kind = struct.unpack(">I4s", header)
        payload = offset + 8
        if size == 1:
            large = data.read(offset + 8, 8)
            if large is None:
                break
            size, payload = struct.unpack(">Q", large)[0], offset + 16
        elif size == 0:
            size = end - offset
        if size < 8:
            break
        found.append((kind, payload, offset + size))
        offset += size
    return found


def _child(data: _Sparse, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, payload, box_end in _boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None


def _probe_mp4(data: _Sparse) -> Probe | None:
    moov = _child(data, 0, data.total, b"moov")
    if moov is None:
        return None
    for kind, start, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        mdia = _child(data, start, end, b"mdia")
        if mdia is None:
            continue
        hdlr = _child(data, *mdia, b"hdlr")
        handler = data.read(hdlr[0] + 8, 4) if hdlr else None
        if handler != b"vide":
            continue
        mdhd = _child(data, *mdia, b"mdhd")
        stbl_path = _child(data, *mdia, b"minf")
        stbl = _child(data, *stbl_path, b"stbl") if stbl_path else None
        if mdhd is None or stbl is None:
            return None
        version = data.read(mdhd[0], 1) or b"\0"
        if version[0] == 1:
            raw = data.read(mdhd[0] + 20, 12) or b""
            timescale, duration = struct.unpack(">IQ", raw) if len(raw) == 12 else (0, 0)
        else:
            raw = data.read(mdhd[0] + 12, 8) or b""
            timescale, duration = struct.unpack(">II", raw) if len(raw) == 8 else (0, 0)
        stsd = _child(data, *stbl, b"stsd")
        entry = data.read(stsd[0] + 8, 40) if stsd else None
        if not entry or len(entry) < 40 or not timescale:
            return None
        codec = entry[4:8]
        width, height = struct.unpack(">HH", entry[32:36])
        stts = _child(data, *stbl, b"stts")
        fps = None
        if stts is not None:
            count_raw = data.read(stts[0] + 4, 4) or b"\0\0\0\0"
            entries = struct.unpack(">I", count_raw)[0]
            table = data.read(stts[0] + 8, 8 * entries) or b""
            samples = ticks = 0
            for index in range(len(table) // 8):
                count, delta = struct.unpack(">II", table[index * 8 : index * 8 + 8])
                samples, ticks = samples + count, ticks + count * delta
            if samples and ticks:
                fps = samples * timescale / ticks
        return Probe("mp4", codec, width, height, duration / timescale, fps)
    return None


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int]:
    first = data[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return value, length


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found: list[tuple[int, int, int]] = []
    offset = start
    while offset < end:
        try:
            element_id, id_length = _vint(data, offset, keep_marker=True)
            size, size_length = _vint(data, offset + id_length, keep_marker=False)
        except IndexError:
            break
        payload = offset + id_length + size_length
        if size_length == 8 and size == (1 << 56) - 1:  # unknown size: runs to the end
            size = end - payload
        found.append((element_id, payload, min(end, payload + size)))
        offset = payload + size
    return found


def _probe_webm(head: bytes) -> Probe | None:
    top = _elements(head, 0, len(head))
    if not top or top[0][0] != 0x1A45DFA3:
        return None
    doc_type = next((head[s:e] for i, s, e in _elements(head, top[0][1], top[0][2]) if i == 0x4282), b"")
    segment = next(((s, e) for i, s, e in top if i == 0x18538067), None)
    if doc_type != b"webm" or segment is None:
        return None
    scale, duration, track = 1_000_000, 0.0, None
    for element_id, start, end in _elements(head, *segment):
        if element_id == 0x1549A966:  # Info
            for inner, s, e in _elements(head, start, end):
                if inner == 0x2AD7B1:
                    scale = int.from_bytes(head[s:e], "big")
                elif inner == 0x4489:
                    duration = struct.unpack(">d" if e - s == 8 else ">f", head[s:e])[0]
        elif element_id == 0x1654AE6B:  # Tracks
            for inner, s, e in _elements(head, start, end):
                fields = {i: head[a:b] for i, a, b in _elements(head, s, e)} if inner == 0xAE else {}
                if fields.get(0x83) == b"\x01":  # a video track
                    track = fields
                    break
    if track is None:
        return None
    video = track.get(0xE0, b"")
    sizes = {i: int.from_bytes(video[s:e], "big") for i, s, e in _elements(video, 0, len(video))}
    default_duration = int.from_bytes(track.get(0x23E383, b""), "big")
    return Probe(
        "webm",
        track.get(0x86, b""),
        sizes.get(0xB0, 0),
        sizes.get(0xBA, 0),
        duration * scale / 1e9,
        1e9 / default_duration if default_duration else None,
    )


def probe(head: bytes, tail: bytes, total: int) -> Probe | None:
    """What the kept bytes of an upload say, or None when they are no video the fake can read."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return _probe_mp4(_Sparse(head, tail, total))
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _probe_webm(head)
    return None


def fail_reason(head: bytes, tail: bytes, total: int, *, max_duration_sec: int) -> str | None:
    """The fail_reason TikTok's processing gives this upload, or None when it takes it."""
    found = probe(head, tail, total)
    if found is None:
        return "file_format_check_failed"
    codecs = MP4_CODECS if found.container == "mp4" else WEBM_CODECS
    if found.codec not in codecs:
        return "file_format_check_failed"
    if found.fps is not None and not (MIN_FPS <= round(found.fps, 3) <= MAX_FPS):
        return "frame_rate_check_failed"
    if not (MIN_SIDE <= found.width <= MAX_SIDE and MIN_SIDE <= found.height <= MAX_SIDE):
        return "picture_size_check_failed"
    if max_duration_sec and found.duration > max_duration_sec + 0.001:
        return "duration_check_failed"
    return None


# --- Photos (content/init, media_type PHOTO) ---

MAX_PHOTO_BYTES = 20 * 1000 * 1000
MAX_PHOTO_SHORT_SIDE = 1080


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """("jpeg" or "webp", width, height) from an image's headers, or None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        offset = 2
        while offset + 9 < len(data):
            if data[offset] != 0xFF:
                return None
            marker = data[offset + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                offset += 2
                continue
            length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
                height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
                return "jpeg", width, height
            offset += 2 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", data[26:30])
            return "webp", width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return "webp", width, height
    return None


def photo_fail_reason(data: bytes) -> str | None:
    """Why TikTok's processing refuses one downloaded photo (JPEG or WebP, at most 20 MB, at most
    1080 px on its short side), or None."""
    if len(data) > MAX_PHOTO_BYTES:
        return "file_format_check_failed"
    found = image_size(data)
    if found is None:
        return "file_format_check_failed"
    _, width, height = found
    if min(width, height) > MAX_PHOTO_SHORT_SIDE:
        return "picture_size_check_failed"
    return None
