"""Resumable video uploads through the API: a file of up to 4 GB sent in chunks, each its own
request, stored as it arrives and checked, once its last byte is in, exactly as the composer's
upload is (apps.posts.services.media_upload: type by content, duration, frame size, codec).

Storage: one multipart upload (apps.media.storage `multipart_*`) per MediaUpload. S3 wants every
part but the last to be at least 5 MiB, so every part but the last is exactly `part_bytes`
(API_UPLOAD_PART_BYTES, 8 MiB unless set; never under 5 MiB), and a chunk that is not the file's
last must be a whole number of parts (at most API_UPLOAD_CHUNK_PARTS of them): part N then always
starts at (N - 1) * part_bytes, so a part sent again replaces itself. A chunk is read from the
request a piece at a time and sent part by part: one part is all a request holds in memory, and
`offset` moves on after each stored part (a broken connection loses at most the part it was in).

The file's first bytes name the object (apps.posts.media.video_name_for): anything but an MP4,
MOV or WebM is refused at the first chunk, before anything is stored. Its SHA-256 is computed at
the end by reading the stored object back (a hash cannot be carried between requests).

An upload not finished within API_UPLOAD_ABANDON_HOURS (24) is abandoned: `uploads_abandon`,
run by the daily retention job for each agency, drops its parts and its row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, accounts_with, holds_every_account
from apps.api.models import MediaUpload, UploadState
from apps.media.storage import PART_BYTES, media_storage, read_ahead
from apps.media.uploads import StoredUpload
from apps.posts.media import EXTENSIONS, HEAD_BYTES, NOT_A_VIDEO, MediaError, video_name_for
from apps.posts.models import MAX_VIDEO_BYTES, PostMedia
from apps.posts.services import media_upload

logger = logging.getLogger(__name__)

S3_MIN_PART_BYTES = 5 * 1024 * 1024
# How long a request sending a chunk holds the upload after its last stored part.
CLAIM_SECONDS = 120
# Pieces the request body is read in.
READ_BYTES = 256 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class UploadError(Exception):
    """A request about an upload that cannot be done; `status` and `code` for the API's answer,
    `offset` (when given) where the client should go on from."""

    def __init__(self, status: int, code: str, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.offset = status, code, offset


def part_bytes() -> int:
    return max(int(getattr(settings, "API_UPLOAD_PART_BYTES", PART_BYTES)), S3_MIN_PART_BYTES)


def chunk_parts() -> int:
    return max(int(getattr(settings, "API_UPLOAD_CHUNK_PARTS", 8)), 1)


def abandon_after() -> dt.timedelta:
    return dt.timedelta(hours=int(getattr(settings, "API_UPLOAD_ABANDON_HOURS", 24)))


def max_upload_bytes() -> int:
    return min(settings.MEDIA_UPLOAD_MAX_BYTES, MAX_VIDEO_BYTES)


def chunk_body_limit() -> int:
    """The most a chunk request may carry (RequestBodyLimitMiddleware answers 413 above it)."""
    return part_bytes() * chunk_parts()


def may_upload(user: Any) -> bool:
    """Whoever may draft for some account (the composer's rule)."""
    return holds_every_account(user) or accounts_with(user, Perm.DRAFT).exists()


# --- Starting and reading ---


def upload_start(
    *, user: Any, filename: str, content_type: str, size: int, account_id: Any = None
) -> MediaUpload:
    """A new upload of `size` bytes; raises Http404 for a key that may not upload (for that
    account), UploadError for a type or size the composer would refuse too."""
    account: TikTokAccount | None = None
    if account_id is not None:
        account = accounts_with(user, Perm.DRAFT).filter(pk=account_id).first()
        if account is None:
            raise Http404
    elif not may_upload(user):
        raise Http404
    if content_type not in EXTENSIONS:
        raise UploadError(
            422, "unsupported_media_type", f"{NOT_A_VIDEO} Send video/mp4, video/quicktime or video/webm."
        )
    if size <= 0:
        raise UploadError(422, "invalid_size", "The file is empty. Choose the video again.")
    if size > max_upload_bytes():
        raise UploadError(
            422, "too_large", f"The video is larger than the limit of {max_upload_bytes():,} bytes (4 GB)."
        )
    return MediaUpload.objects.create(
        created_by=user,
        account=account,
        filename=filename[:255],
        content_type=content_type,
        size=size,
        part_bytes=part_bytes(),
    )


def upload_for_user(user: Any, pk: Any) -> MediaUpload:
    """The gate to an upload: its uploader's only, and while they may still draft for its
    account (when it has one); 404 for anyone else."""
    upload = MediaUpload.objects.filter(pk=pk, created_by=user).first()
    if upload is None:
        raise Http404
    if (
        upload.account_id is not None
        and not accounts_with(user, Perm.DRAFT).filter(pk=upload.account_id).exists()
    ):
        raise Http404
    return upload


def upload_expires_at(upload: MediaUpload) -> dt.datetime:
    return upload.created_at + abandon_after()


# --- Receiving a chunk ---


@dataclass(frozen=True)
class ChunkRange:
    first: int
    last: int
    total: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_content_range(header: str, *, content_length: str | None) -> ChunkRange:
    match = CONTENT_RANGE.match(header.strip())
    if match is None:
        raise UploadError(
            400,
            "invalid_content_range",
            "Send the chunk's place in the file as `Content-Range: bytes FIRST-LAST/TOTAL` "
            "(bytes counted from 0, LAST included).",
        )
    first, last, total = (int(group) for group in match.groups())
    if last < first:
        raise UploadError(400, "invalid_content_range", "In `Content-Range`, LAST comes before FIRST.")
    found = ChunkRange(first, last, total)
    try:
        length = int(content_length or "")
    except ValueError:
        length = -1
    if length != found.length:
        raise UploadError(
            400,
            "invalid_content_length",
            f"The chunk must be sent with a Content-Length of exactly {found.length} bytes "
            f"(LAST - FIRST + 1 of its Content-Range).",
        )
    return found


def _refuse_range(upload: MediaUpload, chunk: ChunkRange) -> None:
    """Whether this chunk fits the upload, before a byte of it is read (nothing changes)."""
    if chunk.total != upload.size:
        raise UploadError(
            400,
            "size_mismatch",
            f"This upload is of {upload.size} bytes; the Content-Range says {chunk.total}.",
            offset=upload.offset,
        )
    if chunk.last >= upload.size:
        raise UploadError(
            400, "invalid_content_range", "The chunk ends past the file's end.", offset=upload.offset
        )
    limit = upload.part_bytes * chunk_parts()
    if chunk.length > limit:
        raise UploadError(413, "chunk_too_large", f"A chunk is at most {limit} bytes.", offset=upload.offset)
    if chunk.last != upload.size - 1 and chunk.length % upload.part_bytes:
        raise UploadError(
            400,
            "invalid_chunk_size",
            f"Every chunk but the last must be a multiple of {upload.part_bytes} bytes (`chunk_size`).",
            offset=upload.offset,
        )


def _state_error(upload: MediaUpload) -> UploadError:
    if upload.state == UploadState.COMPLETE:
        return UploadError(
            409, "upload_complete", "This upload is complete: its video is `media_id`.", offset=upload.offset
        )
    return UploadError(
        409, "upload_failed", upload.error or "This upload failed: start a new one.", offset=upload.offset
    )


def _claim(upload: MediaUpload, first: int) -> None:
    """Hold the upload for this request, if it waits for `first` and no other request holds it."""
    now = timezone.now()
    claimed = (
        MediaUpload.objects.filter(pk=upload.pk, state=UploadState.RECEIVING, offset=first)
        .filter(Q(receiving_until__isnull=True) | Q(receiving_until__lt=now))
        .update(receiving_until=now + dt.timedelta(seconds=CLAIM_SECONDS))
    )
    if claimed:
        return
    upload.refresh_from_db()
    if upload.state != UploadState.RECEIVING:
        raise _state_error(upload)
    if upload.offset != first:
        raise UploadError(
            409,
            "offset_mismatch",
            f"The upload has {upload.offset} bytes: send the chunk that starts at byte {upload.offset}.",
            offset=upload.offset,
        )
    raise UploadError(
        409,
        "upload_busy",
        "Another request is sending a chunk of this upload: wait for it, then ask where the upload is.",
        offset=upload.offset,
    )


def _release(upload: MediaUpload) -> None:
    MediaUpload.objects.filter(pk=upload.pk).update(receiving_until=None)


def _fail(upload: MediaUpload, message: str) -> None:
    """Drop what storage holds of the upload; the row stays (state failed) to say why."""
    storage = media_storage()
    if upload.storage_upload_id:
        storage.multipart_abort(upload.storage_name, upload.storage_upload_id)
    upload.state, upload.error, upload.receiving_until = UploadState.FAILED, message, None
    upload.storage_upload_id, upload.etags = "", []
    upload.save(
        update_fields=["state", "error", "receiving_until", "storage_upload_id", "etags", "updated_at"]
    )


def _store_part(upload: MediaUpload, data: bytes) -> None:
    storage = media_storage()
    if upload.offset == 0:
        name = video_name_for(data[:HEAD_BYTES])
        if name is None:
            _fail(upload, NOT_A_VIDEO)
            raise UploadError(422, "not_a_video", NOT_A_VIDEO, offset=0)
        if upload.storage_upload_id:  # a first part sent again: start over
            storage.multipart_abort(upload.storage_name, upload.storage_upload_id)
        upload.storage_name = name
        upload.storage_upload_id = storage.multipart_start(name, content_type=upload.content_type)
        upload.etags = []
    number = upload.offset // upload.part_bytes + 1
    etag = storage.multipart_part(upload.storage_name, upload.storage_upload_id, number, data)
    upload.etags = [*upload.etags[: number - 1], etag]
    upload.offset += len(data)
    upload.receiving_until = timezone.now() + dt.timedelta(seconds=CLAIM_SECONDS)
    upload.save(
        update_fields=[
            "storage_name",
            "storage_upload_id",
            "etags",
            "offset",
            "receiving_until",
            "updated_at",
        ]
    )


def upload_receive(
    *, upload: MediaUpload, stream: Any, content_range: str, content_length: str | None, request: Any = None
) -> MediaUpload:
    """Append the chunk `stream` carries at `content_range`, part by part; after the file's last
    byte, finish it (`upload_finish`). Raises UploadError (nothing stored of a refused chunk)."""
    chunk = parse_content_range(content_range, content_length=content_length)
    if upload.state != UploadState.RECEIVING:
        raise _state_error(upload)
    _refuse_range(upload, chunk)
    _claim(upload, chunk.first)
    upload.refresh_from_db()
    try:
        remaining = chunk.length
        buffer = bytearray()
        while remaining > 0:
            piece = stream.read(min(READ_BYTES, remaining, upload.part_bytes - len(buffer)))
            if not piece:
                raise UploadError(
                    400,
                    "incomplete_chunk",
                    f"The chunk ended before its Content-Range said; the upload has {upload.offset} bytes.",
                    offset=upload.offset,
                )
            buffer += piece
            remaining -= len(piece)
            if len(buffer) == upload.part_bytes or remaining == 0:
                _store_part(upload, bytes(buffer))
                buffer = bytearray()
    finally:
        if upload.state == UploadState.RECEIVING:
            _release(upload)
    if upload.offset == upload.size:
        return upload_finish(upload=upload, request=request)
    return upload


def _sha256(name: str, size: int) -> str:
    digest = hashlib.sha256()
    for piece in read_ahead(iter(media_storage().iter_range(name, 0, size - 1))):
        digest.update(piece)
    return digest.hexdigest()


def upload_finish(*, upload: MediaUpload, request: Any = None) -> MediaUpload:
    """Join the parts, hash the file and check it as the composer does; the upload is then
    complete (with its PostMedia) or failed (its object deleted, `error` saying why)."""
    storage = media_storage()
    try:
        storage.multipart_complete(upload.storage_name, upload.storage_upload_id, list(upload.etags))
    except Exception:
        logger.exception("Could not complete the upload %s", upload.pk)
        _fail(upload, "The stored parts could not be joined: start the upload again.")
        raise UploadError(
            500, "server_error", "The stored parts could not be joined: start the upload again."
        ) from None
    upload.storage_upload_id, upload.etags = "", []
    stored = StoredUpload(
        storage=storage,
        storage_name=upload.storage_name,
        original_name=upload.filename,
        size=upload.size,
        sha256=_sha256(upload.storage_name, upload.size),
    )
    try:
        media: PostMedia = media_upload(file=stored, by=upload.created_by, request=request)
    except MediaError as exc:  # the object is deleted already
        _fail(upload, str(exc))
        raise UploadError(422, "invalid_media", str(exc)) from None
    upload.state, upload.media, upload.receiving_until = UploadState.COMPLETE, media, None
    upload.save(
        update_fields=["state", "media", "storage_upload_id", "etags", "receiving_until", "updated_at"]
    )
    return upload


# --- Abandoned uploads ---


def uploads_abandon(*, now: dt.datetime | None = None) -> int:
    """Drop uploads of this agency older than API_UPLOAD_ABANDON_HOURS that never completed: their
    stored parts (and the object of a failed one, if any was left) and their rows. Complete
    uploads' rows go too (their media lives on). Returns how many unfinished ones were dropped."""
    cutoff = (now or timezone.now()) - abandon_after()
    storage = media_storage()
    dropped = 0
    for upload in MediaUpload.objects.filter(created_at__lt=cutoff).order_by("created_at").iterator():
        if upload.state != UploadState.COMPLETE:
            dropped += 1
            if upload.storage_upload_id:
                storage.multipart_abort(upload.storage_name, upload.storage_upload_id)
        upload.delete()
    if dropped:
        logger.info("Dropped %s abandoned API upload(s)", dropped)
    return dropped
