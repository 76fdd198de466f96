"""Backing up and restoring one agency (manage.py agency_backup / agency_restore), on real
PostgreSQL (pg_dump, pg_restore) and the real object store: a round trip brings every row and
media object back, a copy beside the live original takes nothing from it, a backup taken while
the agency is written to is one moment, and a bad archive is refused with nothing made."""

from __future__ import annotations

import datetime as dt
import hashlib
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection, migrations, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.oauth import state_issue
from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.audit.services import audit_record
from apps.media.storage import media_storage
from apps.posts.models import Post, PostMedia, PostStatus, ReviewOutcome
from apps.publishing.models import DueJob
from apps.tiktok.models import TikTokRoute
from apps.users.models import Role, User
from tenants import pg_tools, provisioning
from tenants.archive import MANIFEST
from tenants.models import Agency
from tenants.schema_migrations import SchemaMigrator, applied_migrations
from tenants.services import agency_delete, agency_purge
from tests.conftest import OWNER_PASSWORD, client_for, wait_for
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory, video_of_size
from tests.migration_probe import extra_migration
from tests.test_tiktok_webhooks import deliver

EDITOR_EMAIL = "editor@backup.example"


# --- Helpers ---


def table_digests(schema: str, *, where: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Each table's row count and a digest of all its rows (`where`: a condition per table)."""
    where = where or {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r' "
            "AND relname <> 'django_session' ORDER BY relname",
            [schema],
        )
        tables = [row[0] for row in cursor.fetchall()]
        digests = {}
        for table in tables:
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) "  # noqa: S608
                f'FROM "{schema}"."{table}" x WHERE {where.get(table, "true")}'
            )
            digests[table] = tuple(cursor.fetchone())
    return digests


def media_digests(schema: str) -> dict[str, str]:
    storage = media_storage()
    with schema_context(schema):
        return {
            name: hashlib.sha256(b"".join(storage.iter_range(name, 0, size - 1))).hexdigest()
            for name, size in storage.agency_objects(schema)
        }


def nothing_made(slug: str) -> bool:
    schema = slug.replace("-", "_")
    return (
        not Agency.objects.filter(slug=slug).exists()
        and not schema_exists(schema)
        and not media_storage().agency_names(schema)
    )


def fill(agency: Agency, *, open_id: str) -> dict[str, Any]:
    """An agency in use: members with permissions, two accounts (one routed for webhooks), posts in
    every state (approved and rejected ones among them), audit entries, videos and a photo."""
    with schema_context(agency.schema_name):
        owner = User.objects.get(role=Role.OWNER)
        editor = UserFactory(email=EDITOR_EMAIL, role=Role.EDITOR)
        account = TikTokAccountFactory(open_id=open_id)
        other = TikTokAccountFactory(requires_approval=True)
        access_set(user=editor, account=account, perms=[Perm.DRAFT, Perm.PUBLISH], by=owner)
        access_set(user=editor, account=other, perms=[Perm.DRAFT], by=owner)
        now = timezone.now()
        facts: dict[str, dict[str, Any]] = {
            PostStatus.PROCESSING: {"publish_id": "v_pub_processing"},
            PostStatus.PUBLISHED: {
                "publish_id": "v_pub_published",
                "published_at": now,
                "published_post_id": "7" * 19,
            },
        }
        posts = {
            status: PostFactory(account=account, status=status, **facts.get(status, {}))
            for status in PostStatus.values
        }
        posts["approved"] = PostFactory(
            account=other,
            status=PostStatus.SCHEDULED,
            review_outcome=ReviewOutcome.APPROVED,
            reviewed_by=owner,
            reviewed_at=now,
            approved_content_hash="a" * 64,
            created_by=editor,
        )
        posts["rejected"] = PostFactory(
            account=other,
            status=PostStatus.DRAFT,
            review_outcome=ReviewOutcome.REJECTED,
            review_comment="No.",
            reviewed_by=owner,
            reviewed_at=now,
        )
        posts["past_due"] = PostFactory(account=account, scheduled_at=now - dt.timedelta(minutes=10))
        for key in (PostStatus.SCHEDULED, "approved", "past_due"):
            DueJob.objects.create(
                schema_name=agency.schema_name,
                post_id=posts[key].pk,
                kind="publish",
                due_at=posts[key].scheduled_at,
            )
        DueJob.objects.create(
            schema_name=agency.schema_name, post_id=posts[PostStatus.PROCESSING].pk, kind="poll", due_at=now
        )
        for key, size in ((PostStatus.SCHEDULED, 300_000), ("approved", 200_000)):
            data = video_of_size(size)
            media = PostMedia(
                post=posts[key],
                size_bytes=size,
                mime_type="video/mp4",
                sha256=hashlib.sha256(data).hexdigest(),
            )
            media.file.save("clip.mp4", ContentFile(data), save=True)
        photo = PostMedia(
            post=posts[PostStatus.DRAFT],
            kind="photo",
            size_bytes=4,
            mime_type="image/jpeg",
            sha256=hashlib.sha256(b"\xff\xd8\xff\xd9").hexdigest(),
        )
        photo.file.save("photo.jpg", ContentFile(b"\xff\xd8\xff\xd9"), save=True)
        audit_record(action="post.created", actor=editor, obj=posts[PostStatus.DRAFT])
    TikTokRoute.objects.create(open_id=open_id, agency=agency)
    return {"posts": {str(key): post.pk for key, post in posts.items()}, "account": account.pk}


@pytest.fixture
def restored(django_db_blocker: Any, broker_namespace: str) -> Iterator[list[str]]:
    """Slugs of agencies a test restored: deleted and purged after it."""
    slugs: list[str] = []
    yield slugs
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        for agency in Agency.objects.filter(slug__in=slugs):
            agency_purge(agency=agency_delete(agency=agency))


def restore(path: Path, as_slug: str | None = None) -> str:
    args = [str(path)] + (["--as", as_slug] if as_slug else [])
    call_command("agency_restore", *args, verbosity=0)
    return as_slug or ""


def backup(slug: str, folder: Path) -> Path:
    path = folder / f"{slug}-{uuid.uuid4().hex[:6]}.tar"
    call_command("agency_backup", slug, "--output", str(path), verbosity=0)
    return path


def manifest_of(path: Path) -> dict[str, Any]:
    import json

    with tarfile.open(path) as tar:
        member = tar.extractfile(MANIFEST)
        assert member is not None
        return dict(json.load(member))


# --- The round trip ---


def test_an_agency_comes_back_whole_and_a_copy_beside_it_takes_nothing_from_it(
    make_agency: Any, django_db_blocker: Any, restored: list[str], tmp_path: Path
) -> None:
    with django_db_blocker.unblock():
        # Given an agency in use, and another agency beside it
        agency, beta = make_agency(), Agency.objects.get(slug="beta")
        open_id = f"open-{uuid.uuid4().hex[:8]}"
        posts = fill(agency, open_id=open_id)["posts"]
        schema = agency.schema_name
        # What a copy changes (nothing it holds may act for the original), and what a restore does
        in_copy = only_others(posts, ("past_due", "approved", "scheduled", "publishing", "processing"))
        in_restore = only_others(posts, ("past_due", "publishing"))
        before = table_digests(schema)
        before_copy = table_digests(schema, where={"posts_post": in_copy})
        before_restore = table_digests(schema, where={"posts_post": in_restore})
        media_before = media_digests(schema)
        other_before = (table_digests(beta.schema_name), media_digests(beta.schema_name))

        # When it is backed up
        archive = backup(agency.slug, tmp_path)
        manifest = manifest_of(archive)
        assert manifest["agency"]["slug"] == agency.slug
        assert manifest["tables"]["posts_post"]["rows"] == len(posts)
        assert manifest["media"]["objects"] == len(media_before) == 3
        assert manifest["public"] == {"agency": 1, "domains": 1, "tiktok_routes": 1, "due_jobs": 4}
        # (the restores' own audit entries come after the backup)
        old_entries = f"created_at <= '{manifest['created_at']}'"

        # ... and restored as a copy beside it while it is live
        copy = restore(archive, as_slug=f"copy-{uuid.uuid4().hex[:6]}")
        restored.append(copy)
        copy_agency = Agency.objects.get(slug=copy)

        # Then the copy holds the same rows and media, except what must not act twice: its posts
        # are off the schedule, its accounts' tokens gone, and it has no TikTok route or due job
        copied = table_digests(
            copy_agency.schema_name, where={"posts_post": in_copy, "audit_auditlog": old_entries}
        )
        assert copied.pop("accounts_tiktokaccount")[0] == before_copy.pop("accounts_tiktokaccount")[0] == 2
        assert copied == before_copy
        assert media_digests(copy_agency.schema_name) == media_before
        assert not TikTokRoute.objects.filter(agency=copy_agency).exists()
        assert not DueJob.objects.filter(schema_name=copy_agency.schema_name).exists()
        with schema_context(copy_agency.schema_name):
            assert Post.objects.get(pk=posts["scheduled"]).status == PostStatus.DRAFT
            assert Post.objects.get(pk=posts["publishing"]).status == PostStatus.NEEDS_ATTENTION
            note = Post.objects.get(pk=posts["approved"]).last_error_message
            assert f"copy of “{agency.slug}”" in note and "still publishes it" in note
            account = TikTokAccount.objects.get(open_id=open_id)
            assert account.status == AccountStatus.NEEDS_REAUTH
            assert not account.access_token and not account.refresh_token

        # ... and webhooks and the OAuth callback still reach the original only
        assert deliver("authorization.removed", {"reason": 1}, open_id=open_id) == 200
        with schema_context(schema):
            assert TikTokAccount.objects.get(open_id=open_id).status == AccountStatus.REVOKED
            owner_id = str(User.objects.get(role=Role.OWNER).pk)
        with schema_context(copy_agency.schema_name):
            assert TikTokAccount.objects.get(open_id=open_id).status == AccountStatus.NEEDS_REAUTH
        start = state_issue(schema=schema, user_id=owner_id, session={})
        response = client_for(None).get("/oauth/tiktok/callback/", {"code": "c", "state": start.state})
        assert response.status_code == 302 and response["Location"].startswith(agency.url)

        # When the original is deleted, purged, and restored under its own slug
        agency_purge(agency=agency_delete(agency=agency))
        restore(archive)
        restored.append(agency.slug)
        back = Agency.objects.get(slug=agency.slug)

        # Then every row and media object is back as it was, but for the post whose time passed
        # (a draft saying why) and the one caught mid-publish (it needs a person)
        assert table_digests(
            back.schema_name, where={"posts_post": in_restore, "audit_auditlog": old_entries}
        ) == (before_restore)
        assert table_digests(back.schema_name, where={"audit_auditlog": old_entries})["posts_post"][0] == len(
            posts
        )
        assert media_digests(back.schema_name) == media_before
        with schema_context(back.schema_name):
            past_due = Post.objects.get(pk=posts["past_due"])
            assert past_due.status == PostStatus.DRAFT
            assert "was not published" in past_due.last_error_message
            assert Post.objects.get(pk=posts["publishing"]).status == PostStatus.NEEDS_ATTENTION
            assert TikTokAccount.objects.get(open_id=open_id).status == AccountStatus.ACTIVE
            assert AuditLog.objects.filter(action="agency.restored").count() == 1
        jobs = set(DueJob.objects.filter(schema_name=back.schema_name).values_list("post_id", "kind"))
        assert jobs == {
            (posts["scheduled"], "publish"),
            (posts["approved"], "publish"),
            (posts["processing"], "poll"),
        }
        assert list(TikTokRoute.objects.filter(agency=back).values_list("open_id", flat=True)) == [open_id]

        # ... its people sign in with their old passwords, and the other agency never changed
        client = client_for(back)
        assert (
            client.post("/login/", {"username": EDITOR_EMAIL, "password": OWNER_PASSWORD}).status_code == 302
        )
        assert client.get("/").status_code == 200
        assert (table_digests(beta.schema_name), media_digests(beta.schema_name)) == other_before
        assert len(before) == len(table_digests(back.schema_name))


def only_others(posts: dict[str, Any], keys: tuple[str, ...]) -> str:
    """A condition on posts_post: every post but those of `keys`."""
    return "id NOT IN ({})".format(",".join(f"'{posts[key]}'" for key in keys))


# --- While in use ---


def test_a_backup_taken_while_the_agency_is_written_to_is_one_moment(
    make_agency: Any, django_db_blocker: Any, restored: list[str], tmp_path: Path
) -> None:
    with django_db_blocker.unblock():
        # Given an agency where another connection keeps scheduling posts, each one committed
        # with its due job (public schema) and its audit entry
        agency = make_agency()
        with schema_context(agency.schema_name):
            account = TikTokAccountFactory()
        stop, written = threading.Event(), []

        def write() -> None:
            try:
                with schema_context(agency.schema_name):
                    while not stop.is_set():
                        with transaction.atomic():
                            post = PostFactory(account=account, caption=f"writer {len(written)}")
                            DueJob.objects.create(
                                schema_name=agency.schema_name,
                                post_id=post.pk,
                                kind="publish",
                                due_at=post.scheduled_at,
                            )
                            audit_record(action="post.scheduled", obj=post)
                        written.append(post.pk)
            finally:
                connection.close()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            wait_for(lambda: len(written) >= 5)
            # When it is backed up meanwhile
            archive = backup(agency.slug, tmp_path)
            after = len(written)
            wait_for(lambda: len(written) >= after + 3)
        finally:
            stop.set()
            writer.join()

        # Then the archive holds one moment: as many posts as due jobs and audit entries, some of
        # what the writer wrote and not what it wrote later, and a restore of it agrees
        manifest = manifest_of(archive)
        jobs = manifest["public"]["due_jobs"]
        assert 5 <= jobs < len(written)
        assert manifest["tables"]["posts_post"]["rows"] == jobs
        assert manifest["tables"]["audit_auditlog"]["rows"] == jobs + 1  # and the agency's creation
        copy = restore(archive, as_slug=f"copy-{uuid.uuid4().hex[:6]}")
        restored.append(copy)
        with schema_context(copy.replace("-", "_")):
            assert set(Post.objects.values_list("pk", flat=True)) == set(written[:jobs])
            assert AuditLog.objects.filter(action="post.scheduled").count() == jobs


# --- Bad input ---


def test_bad_archives_and_slugs_are_refused_saying_why_and_nothing_is_made(
    make_agency: Any, django_db_blocker: Any, tmp_path: Path
) -> None:
    with django_db_blocker.unblock():
        # Given a good archive of an agency with a video
        agency = make_agency()
        with schema_context(agency.schema_name):
            post = PostFactory()
            data = video_of_size(100_000)
            PostMedia(post=post, size_bytes=len(data), mime_type="video/mp4", sha256="0" * 64).file.save(
                "clip.mp4", ContentFile(data), save=True
            )
        good = backup(agency.slug, tmp_path)
        raw = good.read_bytes()
        with tarfile.open(good) as tar:
            video = next(m for m in tar.getmembers() if m.name.startswith("media/"))
            manifest = tar.getmember(MANIFEST)

        def variant(name: str, content: bytes) -> Path:
            path = tmp_path / name
            path.write_bytes(content)
            return path

        flipped = bytearray(raw)
        flipped[video.offset_data + 1000] ^= 0xFF
        recounted = raw.replace(b'"rows": 1', b'"rows": 2', 1)
        assert recounted != raw and len(recounted) == len(raw)
        cases = {
            "truncated": (variant("truncated.tar", raw[: video.offset_data + 500]), "truncated"),
            "cut before its manifest": (variant("cut.tar", raw[: manifest.offset]), "no manifest"),
            "a byte of a video changed": (variant("flipped.tar", bytes(flipped)), "checksum does not match"),
            "its manifest changed": (variant("recounted.tar", recounted), "signature does not match"),
            "not an archive": (variant("notes.tar", b"hello" * 1000), "not an agency archive"),
        }

        # When each is restored, or the good one over its live agency or under a bad slug
        for case, (path, says) in cases.items():
            slug = f"bad-{uuid.uuid4().hex[:6]}"
            with pytest.raises(CommandError, match=says):
                restore(path, as_slug=slug)
            # Then it says why, and nothing of it was made
            assert nothing_made(slug), case
        with pytest.raises(CommandError, match="exists: restoring over it is refused"):
            restore(good)
        with pytest.raises(CommandError, match="cannot name an agency"):
            restore(good, as_slug="Not A Slug")
        with pytest.raises(CommandError, match="There is no agency “no-such-agency”"):
            backup("no-such-agency", tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [good.name, *(path.name for path, _ in cases.values())]
        )  # (no half-written archive either)

        # ... and a pg_dump older than the server is refused with what to install
        with pytest.raises(pg_tools.ToolMissing, match=r"PostgreSQL 99.*postgresql-client-99"):
            pg_tools.pg_dump_for("99.1")


# --- Migrations ---

PROBE = [migrations.AddField("post", "probe_note", models.TextField(null=True))]


def test_an_archive_behind_the_code_is_migrated_forward_and_one_ahead_is_refused(
    make_agency: Any, django_db_blocker: Any, restored: list[str], tmp_path: Path
) -> None:
    with django_db_blocker.unblock():
        # Given an archive of an agency at today's migrations
        agency = make_agency()
        with schema_context(agency.schema_name):
            PostFactory()
        today = backup(agency.slug, tmp_path)
        base = provisioning.base_schema_name()

        with extra_migration("9999_backup_probe", PROBE) as probe:
            # When the code has one more migration, and the agency has it: its archive (ahead of
            # the base schema) restores
            SchemaMigrator(base).migrate(agency.schema_name)
            newer = backup(agency.slug, tmp_path)
            ahead = f"ahead-{uuid.uuid4().hex[:6]}"
            restore(newer, as_slug=ahead)
            restored.append(ahead)
            assert column_exists(ahead.replace("-", "_"), "posts_post", "probe_note")

            # ... and once the base schema has it too (the deployment migrated), the older archive
            # restores at its own migrations and is migrated forward
            SchemaMigrator(base).migrate(base)
            try:
                older = f"older-{uuid.uuid4().hex[:6]}"
                restore(today, as_slug=older)
                restored.append(older)
            finally:
                migrate_back(base, probe)
            assert probe in applied_migrations(older.replace("-", "_"))
            assert column_exists(older.replace("-", "_"), "posts_post", "probe_note")
            with schema_context(older.replace("-", "_")):
                assert Post.objects.count() == 1

        # Then back on code without that migration, the newer archive is refused, saying which
        refused = f"refused-{uuid.uuid4().hex[:6]}"
        with pytest.raises(CommandError, match=r"newer version of Postline.*posts\.9999_backup_probe"):
            restore(newer, as_slug=refused)
        assert nothing_made(refused)


def migrate_back(schema: str, migration: tuple[str, str]) -> None:
    """Unapply `migration` in `schema` (the base schema goes back to what the other tests expect)."""
    connection.set_schema(schema, include_public=False)
    try:
        executor = MigrationExecutor(connection)
        [parent] = [
            key for key in executor.loader.graph.node_map[migration].parents if key[0] == migration[0]
        ]
        executor.migrate([parent])
    finally:
        connection.set_schema_to_public()
    assert migration not in applied_migrations(schema)


def column_exists(schema: str, table: str, column: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND column_name = %s",
            [schema, table, column],
        )
        return cursor.fetchone() is not None
