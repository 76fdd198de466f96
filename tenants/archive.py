"""The agency archive: one tar file that `agency_backup` writes and `agency_restore` reads.

Members, in this order:

- `schema.dump`: the agency's schema, structure and rows, as pg_dump's custom format (so
  PostgreSQL's own pg_restore reads it too), taken in the same snapshot as the public rows;
- `public.json`: the agency's rows in public tables (its agency row, domains, TikTok routes, due
  jobs), read in that snapshot;
- `media/<name>`: each of its media objects, under the name its rows store;
- `manifest.json`: what the archive holds (product, migrations, row counts per table, each
  member's size and SHA-256), then `manifest.sig`: the manifest's digest signed with the
  deployment's SECRET_KEY (Django's signing, so SECRET_KEY_FALLBACKS verify too).

Uncompressed: pg_dump's format compresses its own data and videos do not compress. Reading
checks every member against the manifest and the manifest against its signature before
anything is restored: a truncated, damaged or altered archive is refused whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.core import signing

FORMAT = "postline-agency-backup"
FORMAT_VERSION = 1
SCHEMA_DUMP = "schema.dump"
PUBLIC_ROWS = "public.json"
MEDIA_PREFIX = "media/"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# Table data left out: sessions would sign people back in from the moment of the backup.
TABLES_WITHOUT_DATA = ("django_session",)

_SIGNING_SALT = "postline.tenants.archive"
# The manifest is read into memory; a real one is a few hundred kilobytes at 100,000 objects.
_MANIFEST_MAX_BYTES = 64 * 1024 * 1024
COPY_PIECE = 1024 * 1024


class ArchiveError(Exception):
    """The archive cannot be used; the message says why, in words an operator can act on."""


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode()


def manifest_signature(data: bytes) -> bytes:
    return signing.Signer(salt=_SIGNING_SALT).sign(hashlib.sha256(data).hexdigest()).encode()


def _signature_valid(data: bytes, signature: bytes) -> bool:
    try:
        signed = signing.Signer(salt=_SIGNING_SALT).unsign(signature.decode().strip())
    except (signing.BadSignature, UnicodeDecodeError):
        return False
    return signed == hashlib.sha256(data).hexdigest()


class HashingReader(io.RawIOBase):
    """Reads from `source` (a file, or a callable yielding pieces) and hashes what passes."""

    def __init__(self, source: IO[bytes] | Iterator[bytes]) -> None:
        self.source = source
        self.hash = hashlib.sha256()
        self.count = 0
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if hasattr(self.source, "read"):
            data = self.source.read(len(view))
        else:
            while not self._pending:
                try:
                    self._pending = next(self.source)
                except StopIteration:
                    return 0
            data, self._pending = self._pending[: len(view)], self._pending[len(view) :]
        view[: len(data)] = data
        self.hash.update(data)
        self.count += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self.hash.hexdigest()


class ArchiveWriter:
    """Writes the members one after another, recording each one's size and checksum."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar = tarfile.TarFile(path, "w", format=tarfile.PAX_FORMAT, copybufsize=COPY_PIECE)
        self.members: dict[str, dict[str, Any]] = {}

    def add(self, name: str, size: int, source: IO[bytes] | Iterator[bytes]) -> None:
        reader = HashingReader(source)
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        self.tar.addfile(info, io.BufferedReader(reader, COPY_PIECE))
        if reader.count != size:
            raise ArchiveError(
                f"{name} changed size while being archived ({size} then {reader.count} bytes)."
            )
        self.members[name] = {"size": size, "sha256": reader.sha256}

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add(name, len(data), io.BytesIO(data))

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (with every member's size and checksum) and its signature; close."""
        manifest = {**manifest, "members": self.members}
        data = manifest_bytes(manifest)
        for name, content in ((MANIFEST, data), (SIGNATURE, manifest_signature(data))):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o600
            self.tar.addfile(info, io.BytesIO(content))
        self.tar.close()
        return manifest

    def abort(self) -> None:
        self.tar.close()


@dataclass
class Archive:
    path: Path
    manifest: dict[str, Any]
    members: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def agency(self) -> dict[str, Any]:
        return dict(self.manifest["agency"])

    @property
    def migrations(self) -> set[tuple[str, str]]:
        return {(app, name) for app, name in (entry.split(".", 1) for entry in self.manifest["migrations"])}

    @property
    def media(self) -> list[str]:
        return [name[len(MEDIA_PREFIX) :] for name in self.members if name.startswith(MEDIA_PREFIX)]


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def archive_open_stream(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r|")
    except FileNotFoundError:
        raise ArchiveError(f"There is no file {path}.") from None
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path} is not an agency archive (not a readable tar file: {exc}).") from None


def archive_read(
    path: Path, handle: Callable[[tarfile.TarInfo, HashingReader], None] | None = None
) -> Archive:
    """Read the whole archive, checking every member against the manifest and the manifest against
    its signature; `handle(member, reader)` may consume each data member as it passes (what it
    leaves unread is read and hashed here). Raises ArchiveError on anything amiss."""
    seen: dict[str, dict[str, Any]] = {}
    manifest_data: bytes | None = None
    signature: bytes | None = None
    tar = archive_open_stream(path)
    try:
        for member in tar:
            name = member.name
            if not member.isfile() or not _safe_member_name(name) or name in seen:
                raise ArchiveError(
                    f"{path} holds an unexpected entry {name!r}: it was not made by agency_backup."
                )
            source = tar.extractfile(member)
            if source is None:  # (isfile() above)
                raise ArchiveError(f"{path}: {name} cannot be read.")
            if name in (MANIFEST, SIGNATURE):
                if member.size > _MANIFEST_MAX_BYTES:
                    raise ArchiveError(f"{path}: its {name} is too large to be a manifest.")
                content = source.read()
                if len(content) != member.size:
                    raise ArchiveError(f"{path} is truncated: its {name} is incomplete.")
                manifest_data, signature = (
                    (content, signature) if name == MANIFEST else (manifest_data, content)
                )
                seen[name] = {}
                continue
            if manifest_data is not None:
                raise ArchiveError(f"{path} has data after its manifest: it was altered.")
            reader = HashingReader(source)
            if handle is not None:
                handle(member, reader)
            while reader.read(COPY_PIECE):
                pass
            if reader.count != member.size:
                raise ArchiveError(
                    f"{path} is truncated: {name} has {reader.count} of its {member.size} bytes."
                )
            seen[name] = {"size": member.size, "sha256": reader.sha256}
    except tarfile.TarError as exc:
        raise ArchiveError(f"{path} is damaged or truncated ({exc}); nothing was restored from it.") from None
    finally:
        tar.close()
    if manifest_data is None or signature is None:
        raise ArchiveError(f"{path} is truncated or incomplete: it has no manifest (or no signature).")
    if not _signature_valid(manifest_data, signature):
        raise ArchiveError(
            f"{path}: the manifest's signature does not match. The archive was altered, or made by a "
            "deployment with another SECRET_KEY; it is not restored."
        )
    try:
        manifest = json.loads(manifest_data)
    except ValueError:
        raise ArchiveError(f"{path}: its manifest is not readable.") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path} is not an agency archive (format {manifest.get('format')!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(
            f"{path} is an agency archive of format version {manifest.get('format_version')}; "
            f"this code reads version {FORMAT_VERSION}."
        )
    listed: dict[str, dict[str, Any]] = manifest.get("members", {})
    data = {name: facts for name, facts in seen.items() if name not in (MANIFEST, SIGNATURE)}
    for name, facts in listed.items():
        if name not in data:
            raise ArchiveError(f"{path} is incomplete: {name} is missing.")
        if data[name] != facts:
            raise ArchiveError(
                f"{path} is damaged: {name}'s checksum does not match the manifest "
                f"(sha256 {data[name]['sha256'][:12]}…, expected {facts['sha256'][:12]}…)."
            )
    if extra := sorted(set(data) - set(listed)):
        raise ArchiveError(f"{path} holds entries its manifest does not list ({', '.join(extra[:3])}).")
    for required in (SCHEMA_DUMP, PUBLIC_ROWS):
        if required not in listed:
            raise ArchiveError(f"{path} has no {required}: it was not made by agency_backup.")
    return Archive(path=path, manifest=manifest, members=listed)
