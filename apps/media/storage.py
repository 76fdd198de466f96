"""Where media bytes live: an S3 bucket (django-storages) or, as a setting, the local disk.

Every key starts with the agency's schema name (`<schema>/posts/video/<uuid>.mp4`): the name a
model stores is relative (`posts/video/<uuid>.mp4`) and the storage prefixes the schema of the
connection it runs in, so an agency's rows can only ever reach that agency's objects, and a
name that tries to climb out (`../beta/...`) is refused. Outside an agency (the public schema)
there is no media at all.

Both backends offer, besides Django's storage API, what media needs to stay out of memory:
`open_writer` (a streaming, multipart write), `multipart_*` (the same multipart write spread over
several requests: the API's resumable uploads), `iter_range`/`read_range` (ranged reads),
`browser_url` (a short-lived presigned URL, or None: stream it through the gated view),
`agency_objects` (every object under an agency's prefix, with its size) and `delete_agency`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import queue
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django_tenants.files.storage import TenantFileSystemStorage as _TenantFileSystemStorage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join

from tenants.db import connection

logger = logging.getLogger(__name__)

# S3 multipart parts (all but the last at least 5 MiB): the most an upload holds in memory.
PART_BYTES = 8 * 1024 * 1024
# Pieces a ranged read yields: what a chunk sent to TikTok holds in memory at a time.
READ_PIECE = 1024 * 1024


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def complete(self) -> None: ...
    def abort(self) -> None: ...


class MediaStorage(Protocol):
    """What media code needs from the storage, whichever backend the settings chose."""

    def open_writer(self, name: str, *, content_type: str) -> ObjectWriter: ...
    def multipart_start(self, name: str, *, content_type: str) -> str: ...
    def multipart_part(self, name: str, upload_id: str, number: int, data: bytes) -> str: ...
    def multipart_complete(self, name: str, upload_id: str, etags: list[str]) -> None: ...
    def multipart_abort(self, name: str, upload_id: str) -> None: ...
    def iter_range(self, name: str, first: int, last: int) -> Iterator[bytes]: ...
    def read_range(self, name: str, first: int, last: int) -> bytes: ...
    def browser_url(self, name: str, *, content_type: str) -> str | None: ...
    def delete(self, name: str) -> None: ...
    def copy(self, name: str, new_name: str) -> None: ...
    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def delete_agency(self, schema_name: str) -> int: ...
    def agency_names(self, schema_name: str) -> list[str]: ...
    def agency_objects(self, schema_name: str) -> list[tuple[str, int]]: ...


def media_storage() -> MediaStorage:
    """The storage media files use (STORAGES["default"])."""
    return cast(MediaStorage, default_storage)


def agency_prefix() -> str:
    """The key prefix of the agency this connection is in; there is no media outside one."""
    schema = connection.schema_name
    if not schema or schema == "public":
        raise SuspiciousFileOperation("Media belongs to an agency; this runs outside any.")
    return schema


# --- S3 ---


class _S3Writer:
    """A multipart upload fed part by part: the part being filled and the one being sent (in a
    thread of its own, so receiving goes on meanwhile) are all it holds in memory. A file smaller
    than one part is a single PUT."""

    def __init__(self, storage: TenantS3Storage, key: str, content_type: str) -> None:
        self.storage = storage
        self.client = storage.client
        self.key = key
        self.content_type = content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.sender: ThreadPoolExecutor | None = None
        self.in_flight: Future[None] | None = None

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= PART_BYTES:
            part = bytes(self.buffer[:PART_BYTES])
            del self.buffer[:PART_BYTES]
            self._send_part(part)

    def _send_part(self, part: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.storage.multipart_start_key(self.key, content_type=self.content_type)
            self.sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
        self._wait()  # one part in flight at a time
        assert self.sender is not None  # noqa: S101  (created with the upload id)
        self.in_flight = self.sender.submit(self._upload_part, len(self.parts) + 1, part)
        self.parts.append({"PartNumber": len(self.parts) + 1})

    def _upload_part(self, number: int, part: bytes) -> None:
        assert self.upload_id is not None  # noqa: S101  (parts are sent once it started)
        self.parts[number - 1]["ETag"] = self.storage.multipart_part_key(
            self.key, self.upload_id, number, part
        )

    def _wait(self) -> None:
        if self.in_flight is not None:
            in_flight, self.in_flight = self.in_flight, None
            in_flight.result()

    def _close_sender(self) -> None:
        if self.sender is not None:
            self.sender.shutdown(wait=True)
            self.sender = None

    def complete(self) -> None:
        bucket = self.storage.bucket_name
        if self.upload_id is None:
            self.storage.bucket_ensure()
            self.client.put_object(
                Bucket=bucket, Key=self.key, Body=bytes(self.buffer), ContentType=self.content_type
            )
        else:
            if self.buffer:
                self._send_part(bytes(self.buffer))
            self._wait()
            self._close_sender()
            self.storage.multipart_complete_key(
                self.key, self.upload_id, [part["ETag"] for part in self.parts]
            )
        self.buffer = bytearray()

    def abort(self) -> None:
        self.buffer = bytearray()
        with contextlib.suppress(Exception):  # the part in flight may have failed too
            self._wait()
        self._close_sender()
        if self.upload_id is not None:
            self.storage.multipart_abort_key(self.key, self.upload_id)
            self.upload_id = None


class TenantS3Storage(S3Storage):
    """django-storages' S3 backend with the agency's schema as every key's prefix, nothing
    public (presigned URLs only), and the bucket created on first write."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()
        self._browser_client: Any = None

    def get_default_settings(self) -> dict[str, Any]:
        defaults = super().get_default_settings()
        defaults.update(
            access_key=settings.S3_ACCESS_KEY_ID,
            secret_key=settings.S3_SECRET_ACCESS_KEY,
            bucket_name=settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            region_name=settings.S3_REGION,
            addressing_style=settings.S3_ADDRESSING_STYLE or None,
            signature_version="s3v4",
            querystring_auth=True,
            querystring_expire=settings.S3_URL_EXPIRE_SECONDS,
            default_acl=None,
            file_overwrite=False,
        )
        return defaults

    @property
    def client(self) -> Any:
        return self.connection.meta.client

    def _normalize_name(self, name: str) -> str:
        try:
            return safe_join(agency_prefix(), name)
        except ValueError:
            raise SuspiciousFileOperation(f"Attempted access to {name!r} denied.") from None

    def bucket_ensure(self) -> None:
        """Create the bucket the first time this process writes, if it does not exist yet."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket_name)
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                    raise
                try:
                    self.client.create_bucket(Bucket=self.bucket_name)
                except ClientError as created:
                    if created.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        raise
                logger.info("Created the media bucket %s", self.bucket_name)
            self._bucket_ready = True

    def _save(self, name: str, content: Any) -> str:
        self.bucket_ensure()
        return cast(str, super()._save(name, content))

    def open_writer(self, name: str, *, content_type: str) -> ObjectWriter:
        return _S3Writer(self, self._normalize_name(clean_name(name)), content_type)

    def copy(self, name: str, new_name: str) -> None:
        """A second object with the same bytes, copied inside the bucket (nothing downloaded)."""
        source = {"Bucket": self.bucket_name, "Key": self._normalize_name(clean_name(name))}
        self.client.copy_object(
            Bucket=self.bucket_name, Key=self._normalize_name(clean_name(new_name)), CopySource=source
        )

    # A multipart upload by its parts, each sent on its own (S3: every part but the last at least
    # 5 MiB, at most 10,000 parts); by name (relative, as models store it) or by key (prefixed).

    def multipart_start(self, name: str, *, content_type: str) -> str:
        return self.multipart_start_key(self._normalize_name(clean_name(name)), content_type=content_type)

    def multipart_part(self, name: str, upload_id: str, number: int, data: bytes) -> str:
        return self.multipart_part_key(self._normalize_name(clean_name(name)), upload_id, number, data)

    def multipart_complete(self, name: str, upload_id: str, etags: list[str]) -> None:
        self.multipart_complete_key(self._normalize_name(clean_name(name)), upload_id, etags)

    def multipart_abort(self, name: str, upload_id: str) -> None:
        self.multipart_abort_key(self._normalize_name(clean_name(name)), upload_id)

    def multipart_start_key(self, key: str, *, content_type: str) -> str:
        self.bucket_ensure()
        started = self.client.create_multipart_upload(
            Bucket=self.bucket_name, Key=key, ContentType=content_type
        )
        return str(started["UploadId"])

    def multipart_part_key(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        sent = self.client.upload_part(
            Bucket=self.bucket_name, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return str(sent["ETag"])

    def multipart_complete_key(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, start=1)]
        self.client.complete_multipart_upload(
            Bucket=self.bucket_name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def multipart_abort_key(self, key: str, upload_id: str) -> None:
        """Drop the upload and every part sent of it (never raises: what is left is logged)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket_name, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                logger.warning("Could not abort the multipart upload of %s", key)

    def iter_range(self, name: str, first: int, last: int) -> Iterator[bytes]:
        """Bytes first..last (inclusive) of the object, in pieces of at most READ_PIECE."""
        key = self._normalize_name(clean_name(name))
        body = self.client.get_object(Bucket=self.bucket_name, Key=key, Range=f"bytes={first}-{last}")["Body"]
        try:
            yield from body.iter_chunks(READ_PIECE)
        finally:
            body.close()

    def read_range(self, name: str, first: int, last: int) -> bytes:
        return b"".join(self.iter_range(name, first, last))

    def browser_url(self, name: str, *, content_type: str) -> str:
        """A presigned GET on the endpoint browsers reach, valid S3_URL_EXPIRE_SECONDS."""
        key = self._normalize_name(clean_name(name))
        if self._browser_client is None:
            self._browser_client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.S3_BROWSER_ENDPOINT_URL or self.endpoint_url,
                region_name=self.region_name,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=Config(
                    signature_version="s3v4", s3={"addressing_style": self.addressing_style or "auto"}
                ),
            )
        return cast(
            str,
            self._browser_client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket_name,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseCacheControl": "private, no-store",
                },
                ExpiresIn=self.querystring_expire,
            ),
        )

    def _agency_listing(self, schema_name: str) -> Iterator[tuple[str, int]]:
        prefix = safe_join(schema_name, "") if schema_name else ""
        if not prefix or prefix == "public/":
            raise SuspiciousFileOperation("An agency's prefix is its schema name.")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"], int(item["Size"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise

    def _agency_keys(self, schema_name: str) -> Iterator[str]:
        return (key for key, _ in self._agency_listing(schema_name))

    def agency_names(self, schema_name: str) -> list[str]:
        """Every object under the agency's prefix, as names relative to it."""
        return [name for name, _ in self.agency_objects(schema_name)]

    def agency_objects(self, schema_name: str) -> list[tuple[str, int]]:
        """Every object under the agency's prefix: (name relative to it, size in bytes), by name."""
        start = len(schema_name) + 1
        return sorted((key[start:], size) for key, size in self._agency_listing(schema_name))

    def delete_agency(self, schema_name: str) -> int:
        """Delete every object under the agency's prefix; returns how many."""
        deleted = 0
        batch: list[dict[str, str]] = []
        for key in self._agency_keys(schema_name):
            batch.append({"Key": key})
            if len(batch) == 1000:
                self.client.delete_objects(Bucket=self.bucket_name, Delete={"Objects": batch, "Quiet": True})
                deleted, batch = deleted + len(batch), []
        if batch:
            self.client.delete_objects(Bucket=self.bucket_name, Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch)
        return deleted


# --- The local disk (MEDIA_STORAGE=filesystem) ---


class _FileWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = path.open("xb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def complete(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


class TenantFileSystemStorage(_TenantFileSystemStorage):
    """Files under MEDIA_ROOT/<schema>/ (django-tenants), with the same extras as the S3 one.
    Browsers get them streamed through the gated view."""

    def path(self, name: str) -> str:
        agency_prefix()
        return cast(str, super().path(name))

    def open_writer(self, name: str, *, content_type: str) -> ObjectWriter:
        return _FileWriter(Path(self.path(name)))

    def copy(self, name: str, new_name: str) -> None:
        target = Path(self.path(new_name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(name), target)

    # Multipart uploads on disk: each part a file in a folder of the upload's own, joined at the end.

    def _parts_folder(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise SuspiciousFileOperation("Not an upload id this storage gave.")
        return Path(self.path(f".uploads/{upload_id}"))

    def multipart_start(self, name: str, *, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        self._parts_folder(upload_id).mkdir(parents=True)
        return upload_id

    def multipart_part(self, name: str, upload_id: str, number: int, data: bytes) -> str:
        (self._parts_folder(upload_id) / f"{number:05d}").write_bytes(data)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def multipart_complete(self, name: str, upload_id: str, etags: list[str]) -> None:
        folder, target = self._parts_folder(upload_id), Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:
            for number in range(1, len(etags) + 1):
                with (folder / f"{number:05d}").open("rb") as part:
                    shutil.copyfileobj(part, out)
        shutil.rmtree(folder, ignore_errors=True)

    def multipart_abort(self, name: str, upload_id: str) -> None:
        shutil.rmtree(self._parts_folder(upload_id), ignore_errors=True)

    def iter_range(self, name: str, first: int, last: int) -> Iterator[bytes]:
        with open(self.path(name), "rb") as handle:
            handle.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                piece = handle.read(min(READ_PIECE, remaining))
                if not piece:
                    return
                remaining -= len(piece)
                yield piece

    def read_range(self, name: str, first: int, last: int) -> bytes:
        return b"".join(self.iter_range(name, first, last))

    def browser_url(self, name: str, *, content_type: str) -> None:
        return None

    def _agency_root(self, schema_name: str) -> Path:
        if not schema_name or schema_name == "public" or "/" in schema_name or schema_name.startswith("."):
            raise SuspiciousFileOperation("An agency's folder is its schema name.")
        return Path(settings.MEDIA_ROOT) / schema_name

    def agency_names(self, schema_name: str) -> list[str]:
        return [name for name, _ in self.agency_objects(schema_name)]

    def agency_objects(self, schema_name: str) -> list[tuple[str, int]]:
        root = self._agency_root(schema_name)
        return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file())

    def delete_agency(self, schema_name: str) -> int:
        root = self._agency_root(schema_name)
        count = len(self.agency_names(schema_name)) if root.exists() else 0
        shutil.rmtree(root, ignore_errors=True)
        return count


# --- Reading an object as a seekable file, by ranged reads ---


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of a stored object that fetches blocks by ranged reads and
    keeps a few of them: enough for a parser that reads headers here and there (MediaInfo on an
    MP4 whose index sits at the end) without downloading the file."""

    BLOCK = 256 * 1024
    KEEP = 8

    def __init__(self, storage: MediaStorage, name: str, size: int) -> None:
        self.storage, self.name, self.length = storage, name, size
        self.position = 0
        self.blocks: OrderedDict[int, bytes] = OrderedDict()
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def _block(self, index: int) -> bytes:
        if index in self.blocks:
            self.blocks.move_to_end(index)
            return self.blocks[index]
        first = index * self.BLOCK
        last = min(self.length, first + self.BLOCK) - 1
        data = self.storage.read_range(self.name, first, last)
        self.bytes_fetched += len(data)
        self.blocks[index] = data
        if len(self.blocks) > self.KEEP:
            self.blocks.popitem(last=False)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.length - self.position)
        done = 0
        while done < wanted:
            index, offset = divmod(self.position, self.BLOCK)
            block = self._block(index)
            piece = block[offset : offset + wanted - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self.position += len(piece)
        return done


# Pieces read ahead while the ones before them are being sent (READ_PIECE each).
READ_AHEAD = 4


def read_ahead(pieces: Iterator[bytes], depth: int = READ_AHEAD) -> Iterator[bytes]:
    """`pieces`, read by a thread of their own up to `depth` ahead of the consumer: reading from
    storage and sending to TikTok overlap instead of taking turns (a publish read the stored video
    at 0.44 of a plain read with the two in turn). At most `depth` + 1 pieces are held; an error
    while reading is raised here, at the piece it happened; a consumer that stops early stops the
    reader."""
    out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        """Hand `item` to the consumer; False once it has stopped."""
        while not stop.is_set():
            try:
                out.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for piece in pieces:
                if not offer(("piece", piece)):
                    break
            else:
                offer(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer(("error", exc))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    # The first piece in the caller's thread: opening the object needs its agency (the
    # connection's schema is the thread's own); the rest is plain reading.
    try:
        first = next(pieces)
    except StopIteration:
        return
    try:
        yield first
    except GeneratorExit:
        getattr(pieces, "close", lambda: None)()
        raise
    reader = threading.Thread(target=read, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = out.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        reader.join(timeout=5)
