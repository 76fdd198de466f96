"""The fields a file's columns map to, in the order the export writes them, and the guess of
which column holds which field from the file's header line."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    key: str
    label: str  # the export's header, and what the mapping step shows
    help: str
    aliases: tuple[str, ...] = ()


SWITCH_HELP = "yes or no (empty: no)"
FIELDS: tuple[Field, ...] = (
    Field(
        "account",
        "Account",
        "the account's TikTok username, e.g. @luna.bakes",
        ("username", "handle", "tiktok"),
    ),
    Field("caption", "Caption", "the post's text", ("text", "title", "copy")),
    Field("date", "Date", "YYYY-MM-DD, e.g. 2027-03-14", ("day", "publish date", "scheduled date")),
    Field("time", "Time", "HH:MM, e.g. 18:30", ("hour", "publish time", "scheduled time")),
    Field(
        "time_zone", "Time zone", "an IANA name, e.g. Europe/Paris (empty: yours)", ("timezone", "tz", "zone")
    ),
    Field(
        "privacy",
        "Privacy",
        "Everyone, Friends, Followers or Only me",
        ("privacy level", "visibility", "who can see"),
    ),
    Field("allow_comment", "Comments", SWITCH_HELP, ("allow comments", "comment")),
    Field("allow_duet", "Duet", SWITCH_HELP, ("allow duet", "duets")),
    Field("allow_stitch", "Stitch", SWITCH_HELP, ("allow stitch", "stitches")),
    Field(
        "commercial_disclosure", "Disclosure", SWITCH_HELP, ("commercial disclosure", "commercial content")
    ),
    Field("brand_organic", "Your brand", SWITCH_HELP, ("own brand", "brand organic")),
    Field("brand_content", "Branded content", SWITCH_HELP, ("paid partnership", "brand content")),
    Field("is_aigc", "AI-generated", SWITCH_HELP, ("ai generated", "aigc", "ai")),
    Field(
        "media",
        "Media",
        "the name of a video already uploaded to the agency, e.g. launch.mp4",
        ("video", "file", "media file"),
    ),
)
BY_KEY = {field.key: field for field in FIELDS}
SWITCHES = (
    "allow_comment",
    "allow_duet",
    "allow_stitch",
    "commercial_disclosure",
    "brand_organic",
    "brand_content",
    "is_aigc",
)


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def mapping_guess(headers: list[str]) -> dict[str, int]:
    """Field → column index for every header that names a field (its label, key or an alias)."""
    names: dict[str, str] = {}
    for field in FIELDS:
        for name in (field.label, field.key, *field.aliases):
            names.setdefault(_plain(name), field.key)
    guess: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = names.get(_plain(header))
        if key is not None and key not in guess:
            guess[key] = index
    return guess
