"""Tiny but structurally valid video files for tests: an MP4 (or MOV) and a WebM.

The MP4 has the boxes a reader needs to learn duration and frame size:
ftyp, moov (mvhd, trak (tkhd, mdia (mdhd, hdlr, minf (vmhd, dinf, stbl)))) and an mdat.
Its samples are not a real H.264 stream: players will show nothing, but parsers (and
our upload checks) read it like any other MP4. Sizes are exact, so `padding` can make a
file of a chosen size.
"""

from __future__ import annotations

import struct

TIMESCALE = 1000
TRACK_TIMESCALE = 90_000  # the video track's clock, as encoders set it
_IDENTITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def mp4_bytes(
    *,
    duration: float = 12.0,
    width: int = 1080,
    height: int = 1920,
    brand: bytes = b"isom",
    padding: int = 0,
    fps: float = 30.0,
    codec: bytes = b"avc1",
) -> bytes:
    """An MP4 of `duration` seconds at `width` x `height` and `fps` frames a second, its video
    track's sample entry `codec` (avc1 H.264, hvc1 H.265, vp09 VP9, mp4v MPEG-4 Part 2, apcn ProRes);
    brand b"qt  " makes a QuickTime MOV."""
    ticks = round(duration * TIMESCALE)
    frames = max(1, round(duration * fps))
    frame_ticks = round(TRACK_TIMESCALE / fps)
    ftyp = _box(b"ftyp", brand, struct.pack(">I", 0x200), brand, b"mp41")
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, TIMESCALE, ticks),
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        b"\0" * 10,
        _IDENTITY_MATRIX,
        b"\0" * 24,  # pre_defined
        struct.pack(">I", 2),  # next track id
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        0x000003,  # enabled, in movie
        struct.pack(">IIII", 0, 0, 1, 0),  # created, modified, track id, reserved
        struct.pack(">I", ticks),
        b"\0" * 8,
        struct.pack(">hhH", 0, 0, 0),  # layer, alternate group, volume (video: 0)
        b"\0" * 2,
        _IDENTITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, TRACK_TIMESCALE, frames * frame_ticks),
        struct.pack(">HH", 0x55C4, 0),
    )
    hdlr = _full_box(b"hdlr", 0, 0, b"\0" * 4, b"vide", b"\0" * 12, b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, b"\0" * 8)
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    sample_entry = _box(
        codec,
        b"\0" * 6,
        struct.pack(">H", 1),  # data reference index
        b"\0" * 16,
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
        b"\0" * 4,
        struct.pack(">H", 1),  # frames per sample
        b"\0" * 32,  # compressor name
        struct.pack(">Hh", 0x18, -1),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, frames, frame_ticks)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),
        _full_box(b"stsz", 0, 0, struct.pack(">II", 1, frames)),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, 0)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    moov = _box(b"moov", mvhd, trak)
    mdat = _box(b"mdat", b"\0" * (frames + padding))
    return ftyp + moov + mdat


def _ebml_id(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _ebml(element_id: int, payload: bytes) -> bytes:
    # Sizes as 8-byte vints: simple and always valid.
    return _ebml_id(element_id) + bytes([0x01]) + len(payload).to_bytes(7, "big") + payload


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def webm_bytes(
    *,
    duration: float = 12.0,
    width: int = 1080,
    height: int = 1920,
    fps: float = 30.0,
    codec: bytes = b"V_VP9",
) -> bytes:
    """A WebM with an EBML header, segment info (duration) and one video track (`codec`, VP9 by
    default) whose frames last 1/`fps` s (DefaultDuration)."""
    header = _ebml(
        0x1A45DFA3,
        _ebml(0x4286, _uint(1))  # EBMLVersion
        + _ebml(0x42F7, _uint(1))  # EBMLReadVersion
        + _ebml(0x42F2, _uint(4))  # EBMLMaxIDLength
        + _ebml(0x42F3, _uint(8))  # EBMLMaxSizeLength
        + _ebml(0x4282, b"webm")  # DocType
        + _ebml(0x4287, _uint(4))  # DocTypeVersion
        + _ebml(0x4285, _uint(2)),  # DocTypeReadVersion
    )
    info = _ebml(
        0x1549A966,
        _ebml(0x2AD7B1, _uint(1_000_000))  # TimecodeScale: 1 ms
        + _ebml(0x4489, struct.pack(">d", duration * 1000))  # Duration in ticks
        + _ebml(0x4D80, b"postline-tests")  # MuxingApp
        + _ebml(0x5741, b"postline-tests"),  # WritingApp
    )
    track = _ebml(
        0xAE,
        _ebml(0xD7, _uint(1))  # TrackNumber
        + _ebml(0x73C5, _uint(1))  # TrackUID
        + _ebml(0x83, _uint(1))  # TrackType: video
        + _ebml(0x86, codec)  # CodecID
        + _ebml(0x23E383, _uint(round(1_000_000_000 / fps)))  # DefaultDuration, ns per frame
        + _ebml(0xE0, _ebml(0xB0, _uint(width)) + _ebml(0xBA, _uint(height))),  # Video
    )
    segment = _ebml(0x18538067, info + _ebml(0x1654AE6B, track))
    return header + segment


# Something that is not a video, whatever its name says.
PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
