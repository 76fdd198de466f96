"""Receiving a video upload: straight into storage, in one bounded-memory pass.

Django's own upload handlers keep a file in memory or copy it to a temporary file before the
view sees it. `StorageUploadHandler` instead sends the bytes to storage as they arrive (a
multipart upload, one part in memory at a time), hashes them in the same pass, names the object
from the file's first bytes and stops at the size limit. What it gives the view, a
`StoredUpload`, reads the stored object back by ranged reads, so checks that need the file's
headers (duration, frame size) never download it.

`streams_upload` wraps the views that accept such a body: nothing of it is read before the
person is signed in and the view's gate let them through; only then is the CSRF token checked
(which reads the body) and an upload that fails that check deleted again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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
TOO_LARGE, NOT_ACCEPTED, EMPTY = "too_large", "not_accepted", "empty"


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


class StorageUploadHandler(FileUploadHandler):
    """Streams the file of one form field to storage; skips any other file field.

    `name_for(head)` names the object from the file's first HEAD_BYTES (or refuses the file
    with None); nothing is written before it answered. After parsing, `refusal` says why no file
    was stored (TOO_LARGE, NOT_ACCEPTED, EMPTY), and `upload` is the StoredUpload when one was.
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
    ) -> None:
        super().__init__(request)
        self.field = field
        self.name_for = name_for
        self.max_bytes = max_bytes
        self.storage = storage or media_storage()
        self.refusal = ""
        self.upload: StoredUpload | None = None
        self._active = False
        self._writer: ObjectWriter | None = None
        self._name = ""

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        if field_name != self.field or self._active or self.upload is not None:
            raise SkipFile()
        self._active = True
        self._head = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        raise StopFutureHandlers()

    def _refuse(self, reason: str) -> None:
        self.refusal = reason
        self._abort()
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
            self.refusal = EMPTY
            return None
        if self._writer is None:
            self._open()  # a file shorter than HEAD_BYTES (or refused: StopUpload)
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


def upload_handler(request: HttpRequest) -> StorageUploadHandler | None:
    """The handler `streams_upload` installed on this request, if any."""
    handlers = getattr(request, "_upload_handlers", None) or []
    found = [h for h in handlers if isinstance(h, StorageUploadHandler)]
    return found[0] if found else None


def streams_upload(
    *,
    field: str,
    name_for: Callable[[bytes], str | None],
    max_bytes: Callable[[], int],
    gate: Callable[..., None],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Let a view receive one file of up to `max_bytes()` in `field`, streamed to storage.

    In order, before any byte of the body is read: the person must be signed in (else the
    sign-in page), `gate(request, *args, **kwargs)` raises Http404 for whoever may not upload;
    then the body is parsed into storage and the CSRF token checked (an upload that fails it is
    deleted). The body limit middleware lets such views receive `max_bytes()` plus the form.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            gate(request, *args, **kwargs)
            if request.method == "POST":
                request.upload_handlers = [
                    StorageUploadHandler(request, field=field, name_for=name_for, max_bytes=max_bytes())
                ]
                csrf = CsrfViewMiddleware(lambda r: HttpResponse())
                rejected = csrf.process_view(request, view, args, kwargs)
                if rejected is not None:
                    handler = upload_handler(request)
                    if handler is not None and handler.upload is not None:
                        handler.upload.discard()
                    return rejected
            return view(request, *args, **kwargs)

        # The CSRF check runs inside, after the gate: the middleware's would read the body first.
        wrapped.csrf_exempt = True  # type: ignore[attr-defined]
        wrapped.request_body_limit = lambda: max_bytes() + FORM_OVERHEAD_BYTES  # type: ignore[attr-defined]
        return wrapped

    return decorator
