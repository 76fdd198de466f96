"""The gates to posts and their media: the only way a view turns a user-supplied id into a row.

Each raises Http404 for anything the user may not see (another agency's ids do not even
exist in this schema). Per-account permissions will tighten `Post.objects.visible_to` and
the accounts gate; these functions and every view built on them follow.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.views import get_account_for_user
from apps.posts.models import MediaKind, Post, PostMedia


def get_post_for_user(user: Any, pk: uuid.UUID) -> Post:
    """The one gate to a single post: 404 unless this user may see it."""
    post = Post.objects.visible_to(user).select_related("account").filter(pk=pk).first()
    if post is None:
        raise Http404("No such post.")
    return post


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


def post_video(post: Post) -> PostMedia | None:
    return PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()


def accounts_for_composer(user: Any, post: Post | None = None) -> QuerySet[TikTokAccount]:
    """Accounts the user may post to: the ones they can see (the accounts gate's rule) that are
    active, plus the edited post's own account whatever its state (so its draft can still be saved;
    publishing is refused while the account cannot post)."""
    accounts = TikTokAccount.objects.filter(status=AccountStatus.ACTIVE)
    if post is not None:
        accounts = accounts | TikTokAccount.objects.filter(pk=post.account_id)
    return accounts.order_by("username", "display_name")


def account_for_user(user: Any, pk: uuid.UUID) -> TikTokAccount:
    """The accounts app's gate, re-exported so posts views have one import for their gates."""
    return get_account_for_user(user, pk)
