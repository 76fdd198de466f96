"""Restoring one agency from an archive (tenants/archive.py) into a fresh schema.

In order, each step before the next:

1. the whole archive is read and checked (every member's checksum, the manifest's signature),
   the target slug is checked free, the archive's migrations are compared with the code's
   (one the code does not know: refused) and pg_restore is found: nothing is made before all
   of this passes;
2. the media objects go to the new agency's prefix (which must be empty), checked again as they
   are written;
3. in one transaction: the schema is made at the archive's migrations (a copy of the base schema
   when that is where the base is, else every migration up to them), its rows are loaded from the
   dump, the row counts compared with the manifest, the migrations the archive lacks applied,
   the posts whose time passed taken off the schedule, then the agency's public rows written.

A failure anywhere removes what steps 2 and 3 made (the transaction rolls back, the new prefix
is emptied); nothing of another agency is ever written. The data is loaded by parsing
pg_restore's data-only script: only COPY into the new schema's own tables and setval on its own
sequences are run, never a statement taken from the archive.

A copy restored while the archived agency still exists (`--as` another slug) must not act for
it: it gets no TikTok routes (webhooks keep reaching the original only), its accounts' tokens are
dropped (a refresh from the copy would rotate the original's tokens at TikTok), so its accounts
need reconnecting, and none of its posts is left scheduled or in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import schema_context, schema_exists

from apps.common.sql import quote_ident
from apps.media.storage import media_storage
from tenants import pg_tools, provisioning, schema_migrations
from tenants.archive import (
    MEDIA_PREFIX,
    PUBLIC_ROWS,
    SCHEMA_DUMP,
    TABLES_WITHOUT_DATA,
    Archive,
    ArchiveError,
    HashingReader,
    archive_read,
)
from tenants.db import connection
from tenants.models import Agency, AgencyStatus, Domain, slug_to_schema, validate_agency_slug

logger = logging.getLogger(__name__)

Key = tuple[str, str]


class RestoreError(Exception):
    """Nothing was restored; the message says why."""


@dataclass
class RestoreResult:
    agency: Agency
    copy_of: str  # the live original's slug when restored beside it, else ""
    rows: int
    media_objects: int
    media_bytes: int
    migrated: list[str] = field(default_factory=list)
    posts_unscheduled: int = 0
    posts_needing_attention: int = 0
    jobs: int = 0
    seconds: float = 0.0


@dataclass
class _Plan:
    archive: Archive
    slug: str
    schema: str
    source_schema: str
    copy_of: str
    behind: list[Key]
    pg_restore: pg_tools.Tool
    # The archive's public rows (public.json), read with the media.
    public: dict[str, Any] = field(default_factory=dict)


def agency_restore(
    *, path: Path, as_slug: str | None = None, say: Callable[[str], None] = lambda _: None
) -> RestoreResult:
    """Restore the archive at `path` as a new agency, under its own slug or `as_slug`.

    Raises RestoreError (bad archive, slug taken, migrations ahead of the code, no pg_restore, any
    failure while restoring) having left nothing behind."""
    started = time.perf_counter()
    try:
        archive = archive_read(Path(path))
    except ArchiveError as exc:
        raise RestoreError(str(exc)) from None
    say(
        f"Archive checked: {len(archive.members)} entries, agency “{archive.agency['slug']}” backed up "
        f"at {archive.manifest['created_at']}."
    )
    plan = _plan(archive, as_slug)
    storage = media_storage()
    try:
        media_objects, media_bytes, dump = _media_and_dump(plan)
        try:
            say(f"Media: {media_objects} objects, {media_bytes} bytes restored under {plan.schema}/.")
            result = _restore_database(plan, dump, say)
        finally:
            dump.unlink(missing_ok=True)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            storage.delete_agency(plan.schema)
        if isinstance(exc, RestoreError | KeyboardInterrupt):
            raise
        if isinstance(exc, ArchiveError):
            raise RestoreError(str(exc)) from None
        logger.exception("Restoring %s as %s failed", archive.path, plan.slug)
        raise RestoreError(f"Restoring failed, and nothing of it was kept: {exc}") from exc
    result.media_objects, result.media_bytes = media_objects, media_bytes
    result.seconds = time.perf_counter() - started
    logger.info("Agency %s restored from %s", plan.slug, archive.path)
    return result


# --- 1. Checks ---


def _plan(archive: Archive, as_slug: str | None) -> _Plan:
    original = archive.agency
    slug = (as_slug or original["slug"]).strip().lower()
    try:
        validate_agency_slug(slug)
    except ValidationError as exc:
        raise RestoreError(f"“{slug}” cannot name an agency: {' '.join(exc.messages)}") from None
    schema = slug_to_schema(slug)
    host = Agency(slug=slug).primary_host
    if Agency.objects.filter(slug=slug).exists() or Agency.objects.filter(schema_name=schema).exists():
        if slug == original["slug"]:
            raise RestoreError(
                f"The agency “{slug}” exists: restoring over it is refused. Restore a copy beside it with "
                "--as NEW_SLUG, or delete and purge it first."
            )
        raise RestoreError(f"The slug “{slug}” is taken by another agency; choose another with --as.")
    if Domain.objects.filter(domain=host).exists() or schema_exists(schema):
        raise RestoreError(f"The address or schema of “{slug}” is in use; choose another slug with --as.")
    if media_storage().agency_names(schema):
        raise RestoreError(
            f"The media store already holds objects under {schema}/ (left by an agency of that name?); "
            "they are not overwritten. Choose another slug with --as, or remove them."
        )

    known = set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    archived = archive.migrations
    if ahead := sorted(archived - known):
        listed = ", ".join(f"{app}.{name}" for app, name in ahead[:5]) + (" …" if len(ahead) > 5 else "")
        raise RestoreError(
            f"The archive was made by a newer version of Postline: its schema has {len(ahead)} migration(s) "
            f"this code does not have ({listed}). Restore it with that version or a later one."
        )
    server = pg_tools.server_version()
    try:
        tool = pg_tools.pg_restore_for(
            dumped_by=archive.manifest["database"]["pg_dump_version"], server=server
        )
    except pg_tools.ToolMissing as exc:
        raise RestoreError(str(exc)) from None
    copy_of = (
        Agency.objects.filter(schema_name=original["schema_name"]).values_list("slug", flat=True).first()
        or ""
    )
    return _Plan(
        archive=archive,
        slug=slug,
        schema=schema,
        source_schema=original["schema_name"],
        copy_of=copy_of,
        behind=sorted(known - archived),
        pg_restore=tool,
    )


# --- 2. Media (and the dump, to a file of our own), checked as they pass ---


def _media_and_dump(plan: _Plan) -> tuple[int, int, Path]:
    storage = media_storage()
    handle = tempfile.NamedTemporaryFile(prefix="postline-restore-", suffix=".dump", delete=False)  # noqa: SIM115
    dump = Path(handle.name)
    objects = total = 0

    def take(member: tarfile.TarInfo, reader: HashingReader) -> None:
        nonlocal objects, total
        if member.name == SCHEMA_DUMP:
            _copy(reader, handle.write)
            handle.close()
        elif member.name == PUBLIC_ROWS:
            plan.public = json.loads(reader.read())
        elif member.name.startswith(MEDIA_PREFIX):
            name = member.name[len(MEDIA_PREFIX) :]
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            with schema_context(plan.schema):
                writer = storage.open_writer(name, content_type=content_type)
                try:
                    _copy(reader, writer.write)
                    _expect(plan.archive, member.name, reader)
                    writer.complete()
                except BaseException:
                    writer.abort()
                    raise
            objects += 1
            total += member.size

    try:
        # Read again: the file could have changed since it was checked; every member is checked again.
        archive_read(plan.archive.path, take)
    except BaseException:
        handle.close()
        dump.unlink(missing_ok=True)
        raise
    return objects, total, dump


def _copy(reader: IO[bytes] | HashingReader, write: Callable[[bytes], Any]) -> None:
    while piece := reader.read(1024 * 1024):
        write(piece)


def _expect(archive: Archive, name: str, reader: HashingReader) -> None:
    facts = archive.members.get(name)
    if facts is None or facts != {"size": reader.count, "sha256": reader.sha256}:
        raise ArchiveError(f"{archive.path} changed while being restored ({name} differs from its manifest).")


# --- 3. The database, in one transaction ---


def _restore_database(plan: _Plan, dump: Path, say: Callable[[str], None]) -> RestoreResult:
    archive = plan.archive
    with transaction.atomic():
        way = _schema_at(plan.schema, archive.migrations)
        say(f"Schema {plan.schema} made at the archive's migrations ({way}).")
        rows = _load_rows(plan, dump)
        say(f"Rows loaded: {rows}.")
        migrated: list[str] = []
        if plan.behind:
            migrated, _ = schema_migrations.SchemaMigrator(provisioning.base_schema_name()).migrate(
                plan.schema
            )
            say(f"Migrated forward: {', '.join(migrated)}.")
        agency = _public_rows(plan)
        unscheduled, attention, jobs = _settle(plan, agency)
        with schema_context(plan.schema):
            from apps.audit.services import audit_record

            audit_record(
                action="agency.restored",
                obj=agency,
                changes={
                    "archive": archive.path.name,
                    "backed_up_at": archive.manifest["created_at"],
                    "slug": [archive.agency["slug"], agency.slug],
                    "copy_of": plan.copy_of,
                    "migrated": migrated,
                    "posts_unscheduled": unscheduled,
                    "posts_needing_attention": attention,
                },
            )
    connection.set_schema_to_public()
    return RestoreResult(
        agency=agency,
        copy_of=plan.copy_of,
        rows=rows,
        media_objects=0,
        media_bytes=0,
        migrated=migrated,
        posts_unscheduled=unscheduled,
        posts_needing_attention=attention,
        jobs=jobs,
    )


def _schema_at(schema: str, applied: set[Key]) -> str:
    """Create `schema` with the structure the archive's rows were in: a copy of the base schema,
    moved to the archive's migrations when it is elsewhere (a few unapplied or applied, in
    seconds), or, when a migration on the way back cannot be reversed, every migration up to
    them run in an empty schema (as `migrate` would, which takes long)."""
    base = provisioning.base_schema_name()
    connection.set_schema_to_public()
    if schema_migrations.applied_migrations(base) == applied:
        provisioning.schema_copy(base, schema)
        return "a copy of the base schema"
    try:
        with transaction.atomic():
            provisioning.schema_copy(base, schema)
            moved = _migrate_to(schema, applied, from_scratch=False)
        return f"a copy of the base schema, {moved} migration(s) applied or unapplied"
    except IrreversibleError as exc:
        logger.info("Restoring into %s: %s; running every migration instead", schema, exc)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quote_ident(schema)}")
    return f"{_migrate_to(schema, applied, from_scratch=True)} migrations run"


def _migrate_to(schema: str, applied: set[Key], *, from_scratch: bool) -> int:
    """Migrate `schema` (forwards and backwards) to exactly the migrations `applied`."""
    connection.set_schema(schema, include_public=False)
    try:
        executor = MigrationExecutor(connection)
        graph = executor.loader.graph
        # Per app, its last migration in `applied`, or none of it.
        targets: list[tuple[str, str | None]] = [
            key
            for key in applied
            if not any(child in applied and child[0] == key[0] for child in graph.node_map[key].children)
        ]
        targets += [(app, None) for app in {app for app, _ in graph.nodes} - {app for app, _ in applied}]
        if from_scratch:
            executor.loader.applied_migrations = {}
        plan = executor.migration_plan(targets, clean_start=from_scratch)
        backwards = [step for step in plan if step[1]]
        if backwards and len(backwards) < len(plan):
            # Django runs a plan one way only: back first, then forwards from there.
            executor.migrate(targets, plan=backwards)
            executor = MigrationExecutor(connection)
            executor.migrate(targets, plan=executor.migration_plan(targets))
        else:
            executor.migrate(targets, plan=plan)
    finally:
        connection.set_schema_to_public()
    made = schema_migrations.applied_migrations(schema)
    if made != applied:
        raise RestoreError(
            f"The schema could not be made at the archive's migrations ({len(made ^ applied)} differ)."
        )
    return len(plan)


_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_COPY = re.compile(rf"^COPY ({_IDENT})\.({_IDENT}) \(({_IDENT}(?:, {_IDENT})*)\) FROM stdin;$")
_SETVAL = re.compile(rf"^SELECT pg_catalog\.setval\('({_IDENT})\.({_IDENT})', (\d+), (true|false)\);$")
_HARMLESS = re.compile(
    r"^(?:$|--.*|SET [a-z_]+ = [^;]*;|SELECT pg_catalog\.set_config\('search_path', '', false\);|"
    r"\\(?:un)?restrict [A-Za-z0-9]+)$"
)
_COPY_BATCH = 1024 * 1024


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def _load_rows(plan: _Plan, dump: Path) -> int:
    """Empty the new schema's tables (a copy brings the base schema's content types, permissions
    and migration records), load the archive's rows into them, check the counts."""
    schema = plan.schema
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'",
            [schema],
        )
        tables = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'S'",
            [schema],
        )
        sequences = {row[0] for row in cursor.fetchall()}
        # Foreign keys are checked at commit (Django makes them deferrable), so the order is free.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for table in sorted(tables):
            cursor.execute(f"DELETE FROM {quote_ident(schema, table)}")  # noqa: S608
        process = subprocess.Popen(  # noqa: S603
            [plan.pg_restore.path, "--data-only", "--file=-", str(dump)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=pg_tools.libpq_env(),
        )
        assert process.stdout is not None  # noqa: S101
        try:
            loaded = _run_script(cursor, process.stdout, plan, tables, sequences)
        finally:
            process.stdout.close()
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            code = process.wait()
        if code != 0:
            raise RestoreError(
                f"pg_restore {plan.pg_restore.version} could not read the dump: {stderr.strip()}"
            )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        expected = plan.archive.manifest["tables"]
        counts = " UNION ALL ".join(
            f"SELECT %s, count(*) FROM {quote_ident(schema, name)}"  # noqa: S608
            for name in sorted(expected)
            if name in tables
        )
        cursor.execute(counts, [name for name in sorted(expected) if name in tables])
        found = dict(cursor.fetchall())
    wrong = [
        f"{name} ({found.get(name, 'no table')} rows, the manifest says {facts['rows']})"
        for name, facts in expected.items()
        if name not in TABLES_WITHOUT_DATA and found.get(name) != facts["rows"]
    ]
    if wrong:
        raise RestoreError(f"The restored rows do not match the manifest: {'; '.join(wrong[:5])}.")
    return loaded


def _run_script(cursor: Any, lines: IO[bytes], plan: _Plan, tables: set[str], sequences: set[str]) -> int:
    loaded = 0
    raw = cursor.cursor  # psycopg's, for COPY
    for line_bytes in lines:
        line = line_bytes.decode().rstrip("\n")
        if match := _COPY.match(line):
            source, table, columns = _unquote(match[1]), _unquote(match[2]), match[3]
            if source != plan.source_schema or table not in tables:
                raise RestoreError(
                    f"The dump holds rows for {source}.{table}, which the restored schema lacks."
                )
            statement = f"COPY {quote_ident(plan.schema, table)} ({columns}) FROM STDIN"
            with raw.copy(statement) as copy:
                batch: list[bytes] = []
                size = 0
                for data in lines:
                    if data == b"\\.\n":
                        break
                    batch.append(data)
                    size += len(data)
                    loaded += 1
                    if size >= _COPY_BATCH:
                        copy.write(b"".join(batch))
                        batch, size = [], 0
                else:
                    raise ArchiveError("The dump ends in the middle of a table's rows.")
                if batch:
                    copy.write(b"".join(batch))
        elif match := _SETVAL.match(line):
            source, sequence = _unquote(match[1]), _unquote(match[2])
            if source != plan.source_schema or sequence not in sequences:
                raise RestoreError(
                    f"The dump sets sequence {source}.{sequence}, which the restored schema lacks."
                )
            cursor.execute(
                "SELECT setval(%s::regclass, %s, %s)",
                [quote_ident(plan.schema, sequence), int(match[3]), match[4] == "true"],
            )
        elif line.startswith("SET client_encoding") and line != "SET client_encoding = 'UTF8';":
            raise RestoreError(f"The dump is not in UTF-8 ({line}); a restore reads UTF-8 only.")
        elif not _HARMLESS.match(line):
            raise RestoreError(f"The dump holds a statement a restore does not run: {line[:80]!r}.")
    return loaded


def _public_rows(plan: _Plan) -> Agency:
    """The agency row and its domain; its TikTok routes unless a copy."""
    from apps.tiktok.models import TikTokRoute

    connection.set_schema_to_public()
    public = plan.public
    [row] = public["agency"]
    status = row["status"]
    if status == AgencyStatus.DELETED:
        # A deleted agency brought back is kept from acting until an operator reactivates it.
        status = AgencyStatus.SUSPENDED
    agency = Agency(
        slug=plan.slug,
        schema_name=plan.schema,
        name=row["name"],
        plan=row["plan"],
        status=status,
        default_time_zone=row["default_time_zone"],
        mfa_policy=row["mfa_policy"],
        email_verified_at=_when(row.get("email_verified_at")),
        email_verification_sent_at=_when(row.get("email_verification_sent_at")),
        status_changed_at=timezone.now() if status != row["status"] else _when(row.get("status_changed_at")),
    )
    agency.save()
    Agency.objects.filter(pk=agency.pk).update(created_at=_when(row["created_at"]) or timezone.now())
    Domain.objects.create(domain=agency.primary_host, tenant=agency, is_primary=True)
    if not plan.copy_of:
        TikTokRoute.objects.bulk_create(
            [TikTokRoute(open_id=route["open_id"], agency=agency) for route in public["tiktok_routes"]],
            ignore_conflicts=True,
        )
    return agency


def _when(value: str | None) -> Any:
    return parse_datetime(value) if value else None


def _settle(plan: _Plan, agency: Agency) -> tuple[int, int, int]:
    """Nothing restored publishes unasked: a scheduled post whose time passed (and in a copy, every
    scheduled post) becomes a draft saying why; one caught mid-publish needs a person (TikTok may
    have it); the rest get their due jobs back. In a copy the accounts' tokens are dropped.
    Returns (posts unscheduled, posts needing attention, jobs written)."""
    from apps.accounts.models import AccountStatus, TikTokAccount
    from apps.common.expressions import db_now
    from apps.posts.models import Post, PostStatus
    from apps.publishing.models import DueJob, JobKind

    archived_jobs = {
        (job["post_id"], job["kind"]): parse_datetime(job["due_at"]) for job in plan.public["due_jobs"]
    }
    backed_up = plan.archive.manifest["created_at"][:10]
    if plan.copy_of:
        unscheduled_note = (
            f"This agency is a copy of “{plan.copy_of}” restored from its backup of {backed_up}, so this "
            "post was taken off the schedule here (the original agency still publishes it). Reconnect "
            "the account in this copy, then schedule it, to publish it from here."
        )
    else:
        unscheduled_note = (
            f"This post was due while the agency was being restored from its backup of {backed_up}, so it "
            "was not published. Nothing was sent to TikTok: schedule it again to publish it."
        )
    attention_note = (
        f"This post was being published when the backup of {backed_up} was taken: TikTok may have "
        "received it. Check the account on TikTok, then mark it published or retry it."
    )
    unscheduled = attention = 0
    jobs: list[DueJob] = []
    with schema_context(plan.schema):
        now = db_now()
        for post in Post.all_objects.filter(
            status__in=(PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.PROCESSING), deleted_at=None
        ).only("pk", "status", "scheduled_at"):
            key = str(post.pk)
            if post.status == PostStatus.SCHEDULED:
                due = archived_jobs.get((key, JobKind.PUBLISH)) or post.scheduled_at
                if (
                    plan.copy_of
                    or post.scheduled_at is None
                    or due is None
                    or min(post.scheduled_at, due) <= now
                ):
                    _post_note(post, PostStatus.DRAFT, "restored_unscheduled", unscheduled_note)
                    unscheduled += 1
                else:
                    jobs.append(
                        DueJob(schema_name=plan.schema, post_id=post.pk, kind=JobKind.PUBLISH, due_at=due)
                    )
            elif post.status == PostStatus.PROCESSING and not plan.copy_of:
                # TikTok has it: asking how it went is safe, and settles it.
                jobs.append(DueJob(schema_name=plan.schema, post_id=post.pk, kind=JobKind.POLL, due_at=now))
            else:
                _post_note(post, PostStatus.NEEDS_ATTENTION, "restored_in_flight", attention_note)
                attention += 1
        if plan.copy_of:
            TikTokAccount.all_objects.exclude(status=AccountStatus.REVOKED).update(
                status=AccountStatus.NEEDS_REAUTH,
                status_reason=(
                    f"This agency is a copy of “{plan.copy_of}”: the connection stays with the original. "
                    "Reconnect the account to post from this copy."
                )[:500],
            )
            TikTokAccount.all_objects.update(access_token="", refresh_token="")
    DueJob.objects.bulk_create(jobs)
    return unscheduled, attention, len(jobs)


def _post_note(post: Any, status: str, code: str, message: str) -> None:
    from apps.audit.services import audit_record

    previous = post.status
    type(post).all_objects.filter(pk=post.pk).update(
        status=status,
        last_error_code=code,
        last_error_message=message,
        # An approval was for going out then; scheduled again, it is asked for again.
        **(
            {
                "review_outcome": "",
                "review_comment": "",
                "reviewed_by": None,
                "reviewed_at": None,
                "approved_content_hash": "",
            }
            if status == "draft"
            else {}
        ),
    )
    audit_record(
        action="post.unscheduled" if status == "draft" else "post.needs_attention",
        obj=post,
        changes={"status": [previous, status], "reason": code},
    )
