"""Backing up one agency into an archive (tenants/archive.py) while it is in use.

Consistency: a REPEATABLE READ, read-only transaction of our own exports its snapshot; pg_dump
dumps the agency's schema in that snapshot (`--snapshot`), and the agency's public rows, its
applied migrations and the row counts of the manifest are read in the same transaction. What
the agency's people and workers commit meanwhile is not in the archive, and everything in it is
one moment's state: a post and its due job, an action and its audit entry. Nothing is locked
beyond what pg_dump takes (ACCESS SHARE on the tables: writers go on; only DDL waits).

Media objects are immutable (named by a fresh uuid when uploaded) and read after the snapshot:
an object the agency uploaded meanwhile may be in the archive without a row (harmless); one it
deleted meanwhile is listed in the manifest as missing and reported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import ClientError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.common.sql import quote_ident
from apps.media.storage import media_storage, read_ahead
from tenants import pg_tools
from tenants.archive import (
    FORMAT,
    FORMAT_VERSION,
    MEDIA_PREFIX,
    PUBLIC_ROWS,
    SCHEMA_DUMP,
    TABLES_WITHOUT_DATA,
    ArchiveError,
    ArchiveWriter,
)
from tenants.db import connection
from tenants.models import Agency

logger = logging.getLogger(__name__)

# pg_dump waits at most this long for a table lock (a migration running on the agency, say).
LOCK_WAIT_TIMEOUT = "60s"


class BackupError(Exception):
    """The backup was not made; the message says why."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    size: int


def product_version() -> str:
    try:
        return importlib.metadata.version("postline")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def default_output(slug: str) -> Path:
    return Path(f"{slug}-{timezone.now():%Y%m%dT%H%M%SZ}.postline.tar")


def agency_backup(
    *, slug: str, output: Path | None = None, say: Callable[[str], None] = lambda _: None
) -> BackupResult:
    """Write one archive holding agency `slug`'s schema, its public rows and its media.

    The file appears only once complete (written beside it under a temporary name first). Raises
    BackupError (no agency, no usable pg_dump, a failing dump) with a message for the operator."""
    started = time.perf_counter()
    agency = Agency.objects.filter(slug=slug.strip().lower()).first()
    if agency is None:
        raise BackupError(f"There is no agency “{slug}” (its slug is the first part of its address).")
    server = pg_tools.server_version()
    try:
        pg_dump = pg_tools.pg_dump_for(server)
    except pg_tools.ToolMissing as exc:
        raise BackupError(str(exc)) from None
    if pg_dump.major != int(server.split(".")[0]):
        say(
            f"Note: pg_dump {pg_dump.version} is newer than the server ({server}); its archive needs "
            f"pg_restore {pg_dump.major} or newer to be read."
        )
    path = Path(output) if output is not None else default_output(agency.slug)
    if path.exists():
        raise BackupError(f"{path} already exists; give another --output.")
    if not path.parent.is_dir():
        raise BackupError(f"There is no folder {path.parent} to write {path.name} in.")
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    partial = work / "archive.tar"
    try:
        manifest = _write(agency, partial, work, pg_dump, server, say)
        os.replace(partial, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = path.stat().st_size
    logger.info("Agency %s backed up to %s (%d bytes)", agency.slug, path, size)
    return BackupResult(path=path, manifest=manifest, seconds=time.perf_counter() - started, size=size)


def _write(
    agency: Agency, partial: Path, work: Path, pg_dump: pg_tools.Tool, server: str, say: Callable[[str], None]
) -> dict[str, Any]:
    schema = agency.schema_name
    dump = work / SCHEMA_DUMP
    with _snapshot() as (snapshot_conn, snapshot_id):
        public, migrations, tables = _read_in_snapshot(snapshot_conn, agency)
        say(
            f"Snapshot {snapshot_id}: {sum(t['rows'] for t in tables.values())} rows in {len(tables)} tables."
        )
        _pg_dump(pg_dump, schema, snapshot_id, dump)
    say(f"Schema dumped by pg_dump {pg_dump.version} ({dump.stat().st_size} bytes).")
    writer = ArchiveWriter(partial)
    try:
        with dump.open("rb") as handle:
            writer.add(SCHEMA_DUMP, dump.stat().st_size, handle)
        dump.unlink()
        writer.add_bytes(PUBLIC_ROWS, json.dumps(public, sort_keys=True, default=str).encode())
        media_bytes, missing = _add_media(writer, schema)
        objects = sum(1 for name in writer.members if name.startswith(MEDIA_PREFIX))
        say(
            f"Media: {objects} objects, {media_bytes} bytes"
            + (f"; {len(missing)} gone meanwhile" if missing else "")
            + "."
        )
        return writer.finish(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "product": {"name": "postline", "version": product_version()},
                "created_at": timezone.now().isoformat(),
                "database": {"server_version": server, "pg_dump_version": pg_dump.version},
                "agency": {
                    "slug": agency.slug,
                    "schema_name": schema,
                    "name": agency.name,
                    "id": agency.pk,
                },
                "migrations": sorted(migrations),
                "tables": tables,
                "tables_without_data": list(TABLES_WITHOUT_DATA),
                "public": {kind: len(rows) for kind, rows in public.items()},
                "media": {"objects": objects, "bytes": media_bytes, "missing": missing},
            }
        )
    except BaseException:
        writer.abort()
        raise


@contextlib.contextmanager
def _snapshot() -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A connection of our own in a REPEATABLE READ, read-only transaction, and its exported
    snapshot's id: kept open until pg_dump has taken it up and finished."""
    db = connection.settings_dict
    conn = psycopg.connect(
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        dbname=db["NAME"],
        application_name="postline-agency-backup",
        **{k: v for k, v in (db.get("OPTIONS") or {}).items() if k in ("sslmode", "sslrootcert")},
    )
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None  # noqa: S101
        yield conn, str(row[0])
        conn.rollback()
    finally:
        conn.close()


def _read_in_snapshot(
    conn: psycopg.Connection[Any], agency: Agency
) -> tuple[dict[str, list[dict[str, Any]]], list[str], dict[str, dict[str, int]]]:
    schema = agency.schema_name
    still = conn.execute("SELECT 1 FROM public.tenants_agency WHERE id = %s", [agency.pk]).fetchone()
    if still is None:
        raise BackupError(f"The agency “{agency.slug}” was purged meanwhile.")

    def rows(query: str, *params: Any) -> list[dict[str, Any]]:
        return [row[0] for row in conn.execute(query, params).fetchall()]

    public = {
        "agency": rows("SELECT row_to_json(a) FROM public.tenants_agency a WHERE id = %s", agency.pk),
        "domains": rows(
            "SELECT row_to_json(d) FROM public.tenants_domain d WHERE tenant_id = %s ORDER BY id", agency.pk
        ),
        "tiktok_routes": rows(
            "SELECT row_to_json(r) FROM public.tiktok_tiktokroute r WHERE agency_id = %s ORDER BY open_id",
            agency.pk,
        ),
        "due_jobs": rows(
            "SELECT row_to_json(j) FROM public.publishing_duejob j WHERE schema_name = %s ORDER BY id", schema
        ),
    }
    migrations = [
        f"{app}.{name}"
        for app, name in conn.execute(
            f"SELECT app, name FROM {quote_ident(schema, 'django_migrations')}"  # noqa: S608
        ).fetchall()
    ]
    names = [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' "
            "ORDER BY c.relname",
            [schema],
        ).fetchall()
    ]
    counts = " UNION ALL ".join(
        f"SELECT %s, count(*) FROM {quote_ident(schema, name)}"  # noqa: S608
        for name in names
    )
    tables = {name: {"rows": int(count)} for name, count in conn.execute(counts, names).fetchall()}
    for name in TABLES_WITHOUT_DATA:
        if name in tables:
            tables[name]["rows"] = 0
    return public, migrations, tables


def _pg_dump(tool: pg_tools.Tool, schema: str, snapshot: str, target: Path) -> None:
    quoted = '"' + schema.replace('"', '""') + '"'
    argv = [
        tool.path,
        "--format=custom",
        f"--schema={quoted}",
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
        "--no-owner",
        "--no-privileges",
        f"--file={target}",
        *(f"--exclude-table-data={quoted}.{name}" for name in TABLES_WITHOUT_DATA),
    ]
    result = subprocess.run(argv, env=pg_tools.libpq_env(), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"pg_dump {tool.version} ({tool.path}) failed: {result.stderr.strip()}")


def _add_media(writer: ArchiveWriter, schema: str) -> tuple[int, list[str]]:
    storage = media_storage()
    total, missing = 0, []
    with schema_context(schema):
        for name, size in storage.agency_objects(schema):
            pieces = _object_pieces(storage, name, size)
            try:
                first = next(pieces, b"")
            except (FileNotFoundError, ClientError) as exc:
                if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") not in (
                    "NoSuchKey",
                    "404",
                ):
                    raise
                missing.append(name)
                continue

            def joined(first: bytes = first, rest: Iterator[bytes] = pieces) -> Iterator[bytes]:
                if first:
                    yield first
                yield from rest

            writer.add(MEDIA_PREFIX + name, size, joined())
            total += size
    return total, missing


def _object_pieces(storage: Any, name: str, size: int) -> Iterator[bytes]:
    """The object's bytes, read by a thread of their own ahead of the archive's writing."""
    if size == 0:
        return iter(())
    return read_ahead(iter(storage.iter_range(name, 0, size - 1)))


__all__ = ["ArchiveError", "BackupError", "BackupResult", "agency_backup"]
