"""Photos for TikTok photo posts: what TikTok takes, and the signed URLs it pulls them from.

TikTok (content/init, media_type PHOTO) takes 1 to 35 JPEG or WebP images, each at most 20 MB and
at most 1080 px on its short side, and refuses the whole post, an hour later and without saying
which, when one is wrong (TIKTOK_API.md, "Photo posts"). So each photo is checked at upload (type
by content with Pillow, which reads only the image's header) and the post again when it is
scheduled, naming the photo by its place in the carousel and saying by how much it is off.

TikTok downloads the photos itself, from https URLs under a prefix verified in the TikTok app's
settings, which cannot be a storage provider's shared hostname. `TIKTOK_MEDIA_BASE_URL` is that
prefix, in front of the root domain's `/tiktok-media/`; each URL carries a signed token (the agency's
schema and the photo's id, valid TIKTOK_MEDIA_URL_SECONDS) and the view answers the exact stored bytes,
never a redirect, for a photo of a post being published, and 404 for anything else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core import signing
from PIL import Image, UnidentifiedImageError

from apps.posts.models import MAX_PHOTO_BYTES, MAX_PHOTOS

MAX_SHORT_SIDE_PX = 1080
JPEG, WEBP = "image/jpeg", "image/webp"
EXTENSIONS = {JPEG: ".jpg", WEBP: ".webp"}
_PILLOW_FORMATS = {"JPEG": JPEG, "WEBP": WEBP}
HEAD_BYTES = 16
TOKEN_SALT = "postline.tiktok-media"  # noqa: S105 - a signing salt, not a secret

NOT_A_PHOTO = (
    "This file is not a JPEG or WebP image. We check what the file contains, not its name: "
    "save the photo as JPEG and upload that."
)
NO_MEDIA_DOMAIN = (
    "Photo posts are not available yet: TikTok downloads photos from a web address of ours that must "
    "be verified with TikTok, and none is set up (TIKTOK_MEDIA_BASE_URL). Ask your Postline operator."
)


@dataclass(frozen=True)
class PhotoFacts:
    mime_type: str
    size_bytes: int
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]


def sniff_photo_type(head: bytes) -> str | None:
    """JPEG or WebP by the first bytes, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def photo_name_for(head: bytes) -> str | None:
    """The storage name of an uploaded photo, from its first bytes (None: not a photo we take)."""
    mime_type = sniff_photo_type(head)
    return f"posts/photo/{uuid.uuid4().hex}{EXTENSIONS[mime_type]}" if mime_type else None


def probe_photo(file: IO[bytes], *, size: int) -> PhotoFacts | None:
    """Type and pixel size from the image's header (Pillow decodes nothing here), or None."""
    file.seek(0)
    try:
        with Image.open(file) as image:
            mime_type = _PILLOW_FORMATS.get(str(image.format))
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    finally:
        file.seek(0)
    if mime_type is None:
        return None
    return PhotoFacts(mime_type, size, int(width), int(height))


def photo_problem(facts: PhotoFacts | None, *, which: str = "The photo") -> str:
    """Why TikTok would refuse this photo ("" when it takes it); `which` names it ("Photo 3")."""
    if facts is None:
        return f"{which} is not a JPEG or WebP image. Save it as JPEG and upload it again."
    if facts.size_bytes > MAX_PHOTO_BYTES:
        over = (facts.size_bytes - MAX_PHOTO_BYTES) / 1_000_000
        return (
            f"{which} is {facts.size_bytes / 1_000_000:.1f} MB, {over:.1f} MB over TikTok's limit of 20 MB "
            "a photo. Save it smaller and upload it again."
        )
    short = min(facts.width, facts.height)
    if short > MAX_SHORT_SIDE_PX:
        frame = f"{facts.width}×{facts.height}"  # noqa: RUF001
        return (
            f"{which} is {frame} pixels: its short side is {short - MAX_SHORT_SIDE_PX:,} pixels over "
            f"TikTok's {MAX_SHORT_SIDE_PX:,}. Resize it to at most {MAX_SHORT_SIDE_PX:,} pixels on its "
            "short side and upload it again."
        )
    return ""


def photos_problem(photos: list[Any]) -> str:
    """Why TikTok would refuse these photos as one post (1 to 35, each as photo_problem), naming the
    first wrong one by its place; "" when it would take them."""
    if not photos:
        return "Add at least one photo to post."
    if len(photos) > MAX_PHOTOS:
        extra = len(photos) - MAX_PHOTOS
        return f"A photo post holds at most {MAX_PHOTOS} photos; this one has {len(photos)}. Remove {extra}."
    for number, media in enumerate(photos, start=1):
        facts = (
            PhotoFacts(media.mime_type, media.size_bytes, media.width, media.height)
            if media.mime_type in EXTENSIONS and media.width and media.height
            else None
        )
        problem = photo_problem(facts, which=f"Photo {number}")
        if problem:
            return problem
    return ""


# --- The URLs TikTok pulls photos from ---


def media_base_url() -> str:
    return settings.TIKTOK_MEDIA_BASE_URL.rstrip("/") + "/" if settings.TIKTOK_MEDIA_BASE_URL else ""


def photo_url(*, schema_name: str, media: Any) -> str:
    """The signed URL of one photo for TikTok (requires TIKTOK_MEDIA_BASE_URL)."""
    base = media_base_url()
    if not base:
        raise ValueError(NO_MEDIA_DOMAIN)
    token = signing.dumps({"s": schema_name, "m": str(media.pk)}, salt=TOKEN_SALT, compress=True)
    return f"{base}{token}{EXTENSIONS.get(media.mime_type, '')}"


def photo_token_read(token: str) -> tuple[str, uuid.UUID] | None:
    """(schema, photo id) of a token that is ours and not expired, else None."""
    for suffix in EXTENSIONS.values():
        token = token.removesuffix(suffix)
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=settings.TIKTOK_MEDIA_URL_SECONDS)
        return str(payload["s"]), uuid.UUID(str(payload["m"]))
    except (signing.BadSignature, KeyError, ValueError, TypeError):
        return None
