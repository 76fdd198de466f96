"""Retention (manage.py purge_expired): soft-deleted rows past their model's retention go for good
with their media objects; what something still refers to stays; audit entries stay unless a
retention is set for them."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount, TikTokAccountUserObjectPermission
from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.media.storage import media_storage
from apps.posts.models import Post, PostMedia, PublishAttempt
from apps.tiktok.models import TikTokRoute
from apps.users.models import Role, User
from tenants.models import Agency
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory, video_of_size


def deleted_days_ago(obj: Any, days: int) -> None:
    type(obj).all_objects.filter(pk=obj.pk).update(deleted_at=timezone.now() - dt.timedelta(days=days))


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_expired", "--agency", "alpha", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_expired_rows_go_with_their_media_and_what_is_still_referred_to_stays(
    alpha: Agency, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.RETENTION_DAYS = {"posts.post": 30, "accounts.tiktokaccount": 90}
    storage = media_storage()
    with schema_context(alpha.schema_name):
        # Given a post deleted 40 days ago (a video, an attempt), one deleted 5 days ago, an account
        # deleted 100 days ago that nothing needs (a member's access to it, a webhook route) and one
        # deleted as long ago whose post is still there
        old = PostFactory()
        data = video_of_size(50_000)
        video = PostMedia(
            post=old, size_bytes=len(data), mime_type="video/mp4", sha256=hashlib.sha256(data).hexdigest()
        )
        video.file.save("clip.mp4", ContentFile(data), save=True)
        PublishAttempt.objects.create(post=old, attempt_number=1, kind="init", started_at=timezone.now())
        recent = PostFactory()
        gone_account = TikTokAccountFactory()
        editor = UserFactory(role=Role.EDITOR)
        access_set(
            user=editor, account=gone_account, perms=[Perm.DRAFT], by=User.objects.get(role=Role.OWNER)
        )
        needed_account = TikTokAccountFactory()
        PostFactory(account=needed_account)
        deleted_days_ago(old, 40)
        deleted_days_ago(recent, 5)
        deleted_days_ago(gone_account, 100)
        deleted_days_ago(needed_account, 100)
        entries = AuditLog.objects.count()
    TikTokRoute.objects.create(open_id=gone_account.open_id, agency=alpha)

    # When an operator asks first what would go
    dry = purge("--dry-run")

    # Then it says so, and nothing went
    assert "posts.post 30 days, accounts.tiktokaccount 90 days" in dry
    assert "alpha: would remove" in dry and "1 posts.post" in dry and "1 posts.postmedia" in dry
    assert "1 accounts.tiktokaccount" in dry and "and 1 media object(s)" in dry
    assert "kept 1 accounts.tiktokaccount" in dry and "nothing was removed" in dry
    with schema_context(alpha.schema_name):
        assert Post.all_objects.filter(pk=old.pk).exists()
        assert storage.exists(video.file.name)

    # When it runs
    with django_capture_on_commit_callbacks(execute=True):
        said = purge()

    # Then the expired post, its media row and object, its attempt, and the account nobody needs
    # (its access rows, its route) are gone; the recent post and the needed account stay
    assert "alpha: removed" in said and "1 posts.publishattempt" in said
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.filter(pk=old.pk).exists()
        assert not PostMedia.all_objects.filter(pk=video.pk).exists()
        assert not storage.exists(video.file.name)
        assert Post.all_objects.filter(pk=recent.pk).exists()
        assert not TikTokAccount.all_objects.filter(pk=gone_account.pk).exists()
        assert not TikTokAccountUserObjectPermission.objects.filter(
            content_object_id=gone_account.pk
        ).exists()
        assert TikTokAccount.all_objects.filter(pk=needed_account.pk).exists()
        # ... the audit log keeps every entry, and records the purge
        assert AuditLog.objects.count() == entries + 1
        entry = AuditLog.objects.get(action="retention.purged")
        assert entry.changes["removed"]["posts.post"] == 1 and entry.changes["media"] == 1
    assert not TikTokRoute.objects.filter(open_id=gone_account.open_id).exists()

    # ... and a second run finds only what is still kept
    assert "alpha: removed nothing; kept 1 accounts.tiktokaccount" in purge()


@pytest.mark.django_db
def test_audit_entries_go_by_age_only_when_a_retention_is_set_and_stay_append_only(
    alpha: Agency, settings: Any
) -> None:
    with schema_context(alpha.schema_name):
        old = AuditLog.objects.create(
            action="post.created", created_at=timezone.now() - dt.timedelta(days=400)
        )
        recent = AuditLog.objects.create(action="post.created")

    settings.RETENTION_DAYS = {"posts.post": 30}
    purge()
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.filter(pk=old.pk).exists()

    settings.RETENTION_DAYS = {"audit.auditlog": 365}
    assert "1 audit.auditlog" in purge()
    with schema_context(alpha.schema_name):
        assert not AuditLog.objects.filter(pk=old.pk).exists()
        assert AuditLog.objects.filter(pk=recent.pk).exists()
        # The log refuses changes again at once
        with pytest.raises(DatabaseError, match="cannot be changed or removed"), transaction.atomic():
            AuditLog.objects.filter(pk=recent.pk).delete()
