"""The gates to posts, their media and their attempts: the only way a view turns a
user-supplied id into a row.

Each raises Http404 for anything the user may not see or act on (another agency's ids do not
even exist in this schema). What a user may do with a post is what they may do with its account
(apps.accounts.permissions).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from django.db.models import CharField, Exists, OuterRef, QuerySet
from django.db.models.functions import Cast
from django.http import Http404

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.permissions import (
    Perm,
    account_perms,
    accounts_with,
    get_account_for_user,
    may_publish_directly,
)
from apps.audit.models import AuditLog
from apps.posts.models import (
    MediaKind,
    MediaType,
    Post,
    PostMedia,
    PostStatus,
    PublishAttempt,
    ReviewOutcome,
)

# Who may send a post to TikTok without approval: a check on top of Perm.DRAFT.
PUBLISH_DIRECTLY = "publish_directly"


def get_post_for_user(user: Any, pk: uuid.UUID, perm: Perm | str = Perm.VIEW) -> Post:
    """The one gate to a single post: 404 unless `user` holds `perm` on the post's account.

    `PUBLISH_DIRECTLY` asks for what sending it to TikTok needs (see `may_publish_directly`)."""
    wanted = Perm.DRAFT if perm == PUBLISH_DIRECTLY else Perm(perm)
    post = Post.objects.visible_to(user, wanted).select_related("account").filter(pk=pk).first()
    if post is None:
        raise Http404("No such post.")
    if perm == PUBLISH_DIRECTLY and not may_publish_directly(account_perms(user, post.account), post.account):
        raise Http404("No such post.")
    return post


def attempts_for_user(user: Any, post: Post) -> QuerySet[PublishAttempt]:
    """The one gate to publish attempts: those of a post the user may see, oldest first."""
    return PublishAttempt.objects.filter(post__in=Post.objects.visible_to(user).filter(pk=post.pk)).order_by(
        "started_at", "attempt_number"
    )


# What makes a post someone's own work: writing it or changing its content (caption, video,
# settings). Moving it in time does not.
_AUTHORING = ("post.created", "post.edited")


def _authored_by(user: Any) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(object_type="posts.post", actor_id=user.pk, action__in=_AUTHORING)


def is_own_work(user: Any, post: Post) -> bool:
    """Whether `user` wrote `post`, changed its content or changed it last: then someone else
    approves it (four eyes)."""
    if user.pk is None:
        return False
    if user.pk in (post.created_by_id, post.updated_by_id):
        return True
    return _authored_by(user).filter(object_id=str(post.pk)).exists()


# Everything of a post that reaches TikTok, besides its account and its files.
TIKTOK_FIELDS = (
    "caption",
    "privacy_level",
    "allow_comment",
    "allow_duet",
    "allow_stitch",
    "commercial_disclosure",
    "brand_organic",
    "brand_content",
    "is_aigc",
    "mode",
    "video_cover_timestamp_ms",
)
PHOTO_FIELDS = ("media_type", "description", "auto_add_music", "photo_cover_index")


def post_content_hash(post: Post) -> str:
    """sha256 of what would go to TikTok for `post`: its account, every TikTok field and the
    checksums of its files. An approval records it; any change to any of them changes it."""
    files: list[Any] = sorted(PostMedia.objects.filter(post=post).values_list("kind", "sha256"))
    payload = {
        "account": str(post.account_id),
        **{field: getattr(post, field) for field in TIKTOK_FIELDS},
        "files": files,
    }
    if post.media_type == MediaType.PHOTO:
        # (only for photo posts: a video post's hash, and so its approval, stays as it was)
        payload.update({field: getattr(post, field) for field in PHOTO_FIELDS})
        payload["files"] = list(
            PostMedia.objects.filter(post=post)
            .order_by("kind", "position")
            .values_list("kind", "position", "sha256")
        )
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def approval_is_current(post: Post) -> bool:
    """Whether `post` is approved as it is now: the version the reviewer saw, unchanged."""
    return (
        post.review_outcome == ReviewOutcome.APPROVED
        and bool(post.approved_content_hash)
        and hmac.compare_digest(post.approved_content_hash, post_content_hash(post))
    )


def posts_awaiting_review(user: Any) -> QuerySet[Post]:
    """Posts waiting for approval on the accounts `user` may approve, soonest first; not their
    own (see `is_own_work`)."""
    authored = _authored_by(user).filter(object_id=Cast(OuterRef("pk"), CharField()))
    return (
        Post.objects.visible_to(user, Perm.APPROVE)
        .filter(status=PostStatus.PENDING_APPROVAL)
        .exclude(created_by=user)
        .exclude(updated_by=user)
        .exclude(Exists(authored))
        .with_account()
        .select_related("created_by")
        .order_by("scheduled_at", "created_at")
    )


def get_media_for_user(user: Any, pk: uuid.UUID) -> PostMedia:
    """The one gate to an uploaded file: the post's, if the user may see the post; a video not
    yet attached to a post only for the person who uploaded it."""
    media = PostMedia.objects.filter(pk=pk).first()
    if media is None:
        raise Http404("No such video.")
    if media.post_id is not None:
        get_post_for_user(user, media.post_id)
    elif media.created_by_id != user.pk:
        raise Http404("No such video.")
    return media


def posts_filtered(
    posts: QuerySet[Post], params: Any, accounts: list[TikTokAccount]
) -> tuple[QuerySet[Post], str, uuid.UUID | None]:
    """The posts list's filters (`status`, `account` among `accounts`, those the viewer may see)
    applied to `posts`; returns them with the status and account id kept ("" and None: all).
    The list and its CSV export read the same filters."""
    status = params.get("status", "")
    if status in PostStatus.values:
        posts = posts.filter(status=status)
    else:
        status = ""
    try:
        account_id: uuid.UUID | None = uuid.UUID(str(params.get("account")))
    except ValueError:
        account_id = None
    if account_id is not None and any(a.pk == account_id for a in accounts):
        posts = posts.filter(account_id=account_id)
    else:
        account_id = None
    return posts, status, account_id


def post_video(post: Post) -> PostMedia | None:
    return PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()


def accounts_for_composer(user: Any, post: Post | None = None) -> QuerySet[TikTokAccount]:
    """Accounts the user may draft for that are active, plus the edited post's own account
    whatever its state (so its draft can still be saved; publishing is refused while the account
    cannot post)."""
    drafting = accounts_with(user, Perm.DRAFT)
    accounts = drafting.filter(status=AccountStatus.ACTIVE)
    if post is not None:
        accounts = accounts | drafting.filter(pk=post.account_id)
    return accounts.order_by("username", "display_name")


def account_for_user(user: Any, pk: uuid.UUID, perm: Perm = Perm.VIEW) -> TikTokAccount:
    """The accounts gate, re-exported so posts views have one import for their gates."""
    return get_account_for_user(user, pk, perm)
