"""Soft delete, and business rules the database enforces on its own."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.analytics.models import AccountSnapshot
from apps.common.expressions import utf16_length
from apps.posts.models import Post, PostStatus, PrivacyLevel, PublishAttempt
from apps.team.models import Invitation
from apps.users.models import Role, User
from tenants.models import Agency
from tests.factories import (
    AccountSnapshotFactory,
    PostFactory,
    PostMediaFactory,
    TikTokAccountFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def refused(make: Any, constraint: str) -> None:
    """The database itself (not a form or full_clean) rejects the row, naming the rule."""
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        make()


# --- Soft delete ---


def test_soft_deleted_post_is_hidden_kept_and_restorable(in_alpha: Agency) -> None:
    editor = UserFactory()
    post = PostFactory()

    post.delete(by=editor)

    assert not Post.objects.filter(pk=post.pk).exists()
    kept = Post.all_objects.get(pk=post.pk)
    assert kept.deleted_at is not None and kept.deleted_by == editor
    kept.restore(by=editor)
    assert Post.objects.filter(pk=post.pk).exists()
    assert Post.objects.get(pk=post.pk).deleted_at is None


def test_bulk_delete_is_soft_too(in_alpha: Agency) -> None:
    account = TikTokAccountFactory()
    PostFactory.create_batch(3, account=account)
    count, _ = Post.objects.filter(account=account).delete()
    assert count == 3
    assert Post.objects.filter(account=account).count() == 0
    assert Post.all_objects.filter(account=account).count() == 3


def test_deactivated_user_cannot_sign_in_until_restored(in_alpha: Agency) -> None:
    user = UserFactory(email="leaver@alpha.example")
    user.delete()
    assert not User.objects.filter(email="leaver@alpha.example").exists()
    assert User.all_objects.get(pk=user.pk).is_active is False
    user.restore()
    assert User.objects.get(pk=user.pk).is_active is True


# --- Constraints the database enforces ---


def test_caption_limit_counts_utf16_units(in_alpha: Agency) -> None:
    emoji_caption = "🎬" * 1100  # 1,100 characters, 2,200 UTF-16 units
    assert utf16_length(emoji_caption) == 2200
    PostFactory(caption=emoji_caption)
    refused(lambda: PostFactory(caption=emoji_caption + "a"), "posts_post_caption_max_2200_utf16")
    refused(lambda: PostFactory(caption="a" * 2201), "posts_post_caption_max_2200_utf16")


def test_branded_content_is_never_private(in_alpha: Agency) -> None:
    refused(
        lambda: PostFactory(
            commercial_disclosure=True, brand_content=True, privacy_level=PrivacyLevel.SELF_ONLY
        ),
        "posts_post_branded_content_not_private",
    )
    PostFactory(commercial_disclosure=True, brand_organic=True, privacy_level=PrivacyLevel.SELF_ONLY)


def test_disclosure_must_name_whose_brand(in_alpha: Agency) -> None:
    refused(lambda: PostFactory(commercial_disclosure=True), "posts_post_disclosure_names_whose_brand")
    refused(lambda: PostFactory(brand_organic=True), "posts_post_disclosure_names_whose_brand")


def test_only_a_draft_may_hold_content_tiktok_would_refuse(in_alpha: Agency) -> None:
    """The composer saves an unfinished draft as it is; from scheduling on, the rules hold."""
    draft = PostFactory(status=PostStatus.DRAFT, caption="a" * 2201, commercial_disclosure=True)
    Post.objects.filter(pk=draft.pk).update(status=PostStatus.CANCELLED)
    refused(
        lambda: Post.objects.filter(pk=draft.pk).update(status=PostStatus.SCHEDULED),
        "posts_post_caption_max_2200_utf16",
    )


def test_scheduled_post_needs_a_time_zone_time_and_privacy(in_alpha: Agency) -> None:
    refused(lambda: PostFactory(scheduled_at=None), "posts_post_scheduled_has_time")
    refused(lambda: PostFactory(schedule_time_zone=""), "posts_post_schedule_has_time_zone")
    refused(lambda: PostFactory(privacy_level=""), "posts_post_privacy_chosen_unless_draft")
    PostFactory(status=PostStatus.DRAFT, privacy_level="", scheduled_at=None, schedule_time_zone="")


def test_published_post_id_is_19_digits(in_alpha: Agency) -> None:
    def published(post_id: str) -> Post:
        return PostFactory(
            status=PostStatus.PUBLISHED,
            publish_id="v_pub_file~v2.1",
            published_post_id=post_id,
            published_at=timezone.now(),
        )

    refused(lambda: published("12345"), "posts_post_published_id_19_digits")
    refused(lambda: published("73049128475620384x1"[:19]), "posts_post_published_id_19_digits")
    assert published("7304912847562038471").published_post_id == "7304912847562038471"
    refused(
        lambda: PostFactory(status=PostStatus.PUBLISHED, published_at=timezone.now()),
        "posts_post_processing_has_publish_id",
    )


def test_unknown_status_and_privacy_are_refused(in_alpha: Agency) -> None:
    refused(lambda: PostFactory(status="posted"), "posts_post_status_valid")
    refused(lambda: PostFactory(privacy_level="FRIENDS"), "posts_post_privacy_level_valid")


def test_one_snapshot_per_account_and_day(in_alpha: Agency) -> None:
    snapshot = AccountSnapshotFactory()
    refused(
        lambda: AccountSnapshot.objects.create(account=snapshot.account, date=snapshot.date, followers=5),
        "analytics_one_snapshot_per_account_day",
    )
    AccountSnapshot.objects.create(account=snapshot.account, date=snapshot.date - dt.timedelta(days=1))


def test_open_id_is_unique_even_after_soft_delete(in_alpha: Agency) -> None:
    account = TikTokAccountFactory(open_id="open-abc")
    account.delete()
    refused(lambda: TikTokAccountFactory(open_id="open-abc"), "accounts_tiktokaccount_open_id_unique")
    assert TikTokAccount.all_objects.filter(open_id="open-abc").count() == 1


def test_one_video_per_post_and_media_checks(in_alpha: Agency) -> None:
    post = PostFactory()
    PostMediaFactory(post=post)
    refused(lambda: PostMediaFactory(post=post), "posts_media_one_video_per_post")
    refused(lambda: PostMediaFactory(mime_type="application/pdf"), "posts_media_video_type")
    refused(lambda: PostMediaFactory(sha256="not-a-hash"), "posts_media_sha256_hex")
    refused(lambda: PostMediaFactory(size_bytes=0), "posts_media_size_range")


def test_attempt_cannot_finish_before_it_starts(in_alpha: Agency) -> None:
    post = PostFactory()
    now = timezone.now()
    refused(
        lambda: PublishAttempt.objects.create(
            post=post,
            attempt_number=1,
            kind="init",
            started_at=now,
            finished_at=now - dt.timedelta(seconds=1),
        ),
        "posts_attempt_finishes_after_start",
    )


def test_user_email_is_unique_ignoring_case(in_alpha: Agency) -> None:
    UserFactory(email="Dana@Alpha.example")
    refused(
        lambda: User.objects.bulk_create([User(email="dana@alpha.example", role=Role.EDITOR)]),
        "users_user_email_ci_unique",
    )


def test_invitation_rules(in_alpha: Agency) -> None:
    def invite(**extra: Any) -> Invitation:
        values: dict[str, Any] = {
            "email": "new@alpha.example",
            "role": Role.EDITOR,
            "token_hash": "a" * 64,
            "expires_at": timezone.now() + dt.timedelta(days=7),
        }
        values.update(extra)
        return Invitation.objects.create(**values)

    refused(lambda: invite(role=Role.OWNER), "team_invitation_not_owner")
    refused(lambda: invite(token_hash="plain-token"), "team_invitation_token_is_sha256")
    invite()
    refused(
        lambda: invite(token_hash="b" * 64, email="NEW@alpha.example"), "team_invitation_one_open_per_email"
    )
