"""Receiving a video upload: straight into storage, in one bounded-memory pass.

Django's own upload handlers keep a file in memory or copy it to a temporary file before the
view sees it. `StorageUploadHandler` instead sends the bytes to storage as they arrive (a
multipart upload, one part in memory at a time), hashes them in the same pass, names the object
from the file's first bytes and stops at the size limit. What it gives the view, a
`StoredUpload`, reads the stored object back by ranged reads, so checks that need the file's
headers (duration, frame size) never download it.

`streams_upload` wraps the views that accept such a body: nothing of it is read before the
person is signed in and the view's gate let them through; only then is the CSRF token checked
(which reads the body) and an upload that fails that check deleted again. A view may take, besides
its one file, several files of another field (`also`: a photo post's photos sent with the
composer's form), each refused on its own without losing the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import IO, Any, cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopFutureHandlers, StopUpload
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from apps.media.storage import MediaStorage, ObjectWriter, RangeReader, media_storage

# What is read before naming the object: enough to tell the file's type by its content.
HEAD_BYTES = 256
# Room for the form's other fields around the file in a multipart body.
FORM_OVERHEAD_BYTES = 1_000_000

# Why an upload was refused (StorageUploadHandler.refusal).
TOO_LARGE, NOT_ACCEPTED, EMPTY, TOO_MANY = "too_large", "not_accepted", "empty", "too_many"


class StoredUpload(UploadedFile):
    """An uploaded file already in storage: its facts, and a seekable view by ranged reads."""

    def __init__(
        self, *, storage: MediaStorage, storage_name: str, original_name: str, size: int, sha256: str
    ) -> None:
        self.storage = storage
        self.storage_name = storage_name
        self.sha256 = sha256
        super().__init__(
            file=cast(IO[bytes], RangeReader(storage, storage_name, size)),
            name=original_name,
            content_type=None,
            size=size,
        )

    def discard(self) -> None:
        """Delete the stored object (the upload was refused after all)."""
        self.storage.delete(self.storage_name)


@dataclass(frozen=True)
class Received:
    """One file of a field that takes several (`many`), in the order sent: the stored upload, or
    why it was refused (TOO_LARGE, NOT_ACCEPTED, EMPTY, TOO_MANY)."""

    file_name: str
    upload: StoredUpload | None
    refusal: str = ""


class StorageUploadHandler(FileUploadHandler):
    """Streams the file of one form field to storage; skips any other file field (unless
    `skip_others` is off: another handler after it takes them).

    `name_for(head)` names the object from the file's first HEAD_BYTES (or refuses the file
    with None); nothing is written before it answered. After parsing, `refusal` says why no file
    was stored (TOO_LARGE, NOT_ACCEPTED, EMPTY), and `upload` is the StoredUpload when one was.

    With `many` above 1 the field takes up to that many files, each of up to `max_bytes`: a file
    refused is skipped (what was stored of it deleted) and the next one read; `received` lists
    every file in the order sent. A file past `many` is refused unread (TOO_MANY).
    """

    # The parser reads the body in pieces of this size: how far past a limit it may read.
    chunk_size = 256 * 1024

    def __init__(
        self,
        request: HttpRequest,
        *,
        field: str,
        name_for: Callable[[bytes], str | None],
        max_bytes: int,
        storage: MediaStorage | None = None,
        many: int = 1,
        skip_others: bool = True,
    ) -> None:
        super().__init__(request)
        self.field = field
        self.name_for = name_for
        self.max_bytes = max_bytes
        self.storage = storage or media_storage()
        self.many = many
        self.skip_others = skip_others
        self.refusal = ""
        self.upload: StoredUpload | None = None
        self.received: list[Received] = []
        self._active = False
        self._writer: ObjectWriter | None = None
        self._name = ""

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        if field_name != self.field:
            if self.skip_others:
                raise SkipFile()
            return  # for the next handler
        if self.many > 1 and len(self.received) >= self.many:
            self.received.append(Received(self.file_name or "", None, TOO_MANY))
            raise SkipFile()
        if self._active or (self.many == 1 and self.upload is not None):
            raise SkipFile()
        self._active = True
        self._head = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        raise StopFutureHandlers()

    def _refuse(self, reason: str) -> None:
        self._abort()
        if self.many > 1:
            # This file only: the parser skips the rest of it and reads the next one.
            self.received.append(Received(self.file_name or "", None, reason))
            raise SkipFile()
        self.refusal = reason
        # Read no further: the rest of the body is not wanted.
        raise StopUpload(connection_reset=True)

    def _open(self) -> None:
        name = self.name_for(bytes(self._head[:HEAD_BYTES]))
        if name is None:
            self._refuse(NOT_ACCEPTED)
            return
        self._name = name
        self._writer = self.storage.open_writer(name, content_type=self.content_type or "")
        self._writer.write(bytes(self._head))
        self._head = bytearray()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self._active:
            return raw_data
        self._size += len(raw_data)
        if self._size > self.max_bytes:
            self._refuse(TOO_LARGE)
        self._digest.update(raw_data)
        if self._writer is not None:
            self._writer.write(raw_data)
            return None
        self._head += raw_data
        if len(self._head) >= HEAD_BYTES:
            self._open()
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if not self._active:
            return None
        if self._size == 0:
            self._active = False
            if self.many > 1:
                self.received.append(Received(self.file_name or "", None, EMPTY))
            else:
                self.refusal = EMPTY
            return None
        if self._writer is None:
            try:
                self._open()  # a file shorter than HEAD_BYTES (or refused: StopUpload)
            except SkipFile:
                return None  # refused, and recorded (`many`): the parser is past this file already
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.complete()
        self._active = False
        self.upload = StoredUpload(
            storage=self.storage,
            storage_name=self._name,
            original_name=self.file_name or "",
            size=self._size,
            sha256=self._digest.hexdigest(),
        )
        if self.many > 1:
            self.received.append(Received(self.upload.name or "", self.upload))
        return self.upload

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self._active = False

    def upload_interrupted(self) -> None:
        self._abort()

    def upload_complete(self) -> None:
        self._abort()  # a file the parser never completed (a broken body) leaves nothing


def upload_handler(request: HttpRequest, field: str | None = None) -> StorageUploadHandler | None:
    """The handler `streams_upload` installed on this request for `field` (default: its main
    field), if any."""
    handlers = getattr(request, "_upload_handlers", None) or []
    found = [
        h for h in handlers if isinstance(h, StorageUploadHandler) and (field is None or h.field == field)
    ]
    return found[0] if found else None


def discard_uploads(request: HttpRequest) -> None:
    """Delete every file this request streamed to storage (the view refuses the request)."""
    handlers = getattr(request, "_upload_handlers", None) or []
    for handler in handlers:
        if isinstance(handler, StorageUploadHandler):
            stored = [received.upload for received in handler.received] or [handler.upload]
            for upload in stored:
                if upload is not None:
                    upload.discard()


@dataclass(frozen=True)
class AlsoUpload:
    """A field of several files a view takes besides its main one (`streams_upload(also=...)`)."""

    field: str
    name_for: Callable[[bytes], str | None]
    max_bytes: Callable[[], int]
    many: int


def streams_upload(
    *,
    field: str,
    name_for: Callable[[bytes], str | None],
    max_bytes: Callable[[], int],
    gate: Callable[..., None],
    many: int = 1,
    also: Sequence[AlsoUpload] = (),
    body_bytes: Callable[[], int] | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Let a view receive one file (or up to `many`) of up to `max_bytes()` in `field`, and up to
    `many` of each field in `also`, streamed to storage.

    In order, before any byte of the body is read: the person must be signed in (else the
    sign-in page), `gate(request, *args, **kwargs)` raises Http404 for whoever may not upload;
    then the body is parsed into storage and the CSRF token checked (an upload that fails it is
    deleted). The body limit middleware lets such views receive all of them at their limits
    (`max_bytes()` times `many`, for each field) plus the form; `body_bytes()`, when given, is the
    main field's part of that limit instead (the handler then stops at `max_bytes()` and the view
    says why, rather than the middleware refusing the body with a bare "too large").
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            gate(request, *args, **kwargs)
            if request.method == "POST":
                handlers = [
                    StorageUploadHandler(
                        request,
                        field=field,
                        name_for=name_for,
                        max_bytes=max_bytes(),
                        many=many,
                        skip_others=not also,
                    )
                ]
                for number, extra in enumerate(also, start=1):
                    handlers.append(
                        StorageUploadHandler(
                            request,
                            field=extra.field,
                            name_for=extra.name_for,
                            max_bytes=extra.max_bytes(),
                            many=extra.many,
                            skip_others=number == len(also),
                        )
                    )
                request.upload_handlers = list[FileUploadHandler](handlers)
                csrf = CsrfViewMiddleware(lambda r: HttpResponse())
                rejected = csrf.process_view(request, view, args, kwargs)
                if rejected is not None:
                    discard_uploads(request)
                    return rejected
            return view(request, *args, **kwargs)

        def body_limit() -> int:
            files = (body_bytes or max_bytes)() * many + sum(extra.max_bytes() * extra.many for extra in also)
            return files + FORM_OVERHEAD_BYTES

        # The CSRF check runs inside, after the gate: the middleware's would read the body first.
        wrapped.csrf_exempt = True  # type: ignore[attr-defined]
        wrapped.request_body_limit = body_limit  # type: ignore[attr-defined]
        return wrapped

    return decorator
