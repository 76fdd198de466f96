"""Reading comments through the post's permission gate: whoever may see a post reads its client
thread; only the agency's team (not client reviewers) reads the internal one."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.permissions import Perm, users_with
from apps.comments.models import Comment, Visibility
from apps.posts.models import Post
from apps.users.models import Role, User


def is_team(user: Any) -> bool:
    """People of the agency (not its clients' reviewers): they read internal threads."""
    return bool(user.is_authenticated and user.is_active and user.role != Role.CLIENT)


def visibilities_for(user: Any) -> list[str]:
    """The threads `user` reads on a post they may see, in the order pages show them."""
    return [Visibility.INTERNAL, Visibility.CLIENT] if is_team(user) else [Visibility.CLIENT]


def thread(post: Post, visibility: str) -> list[Comment]:
    return list(Comment.objects.thread(post, visibility))


def threads_of(posts: list[Post], visibility: str) -> dict[Any, list[Comment]]:
    """One thread of each of `posts` (a page of them), in two queries whatever their number."""
    found: dict[Any, list[Comment]] = {post.pk: [] for post in posts}
    for comment in Comment.objects.thread([p.pk for p in posts], visibility):
        found[comment.post_id].append(comment)
    return found


def get_comment_for_user(user: Any, pk: uuid.UUID | str) -> Comment:
    """The one gate to a single comment: 404 unless `user` may see its post and its thread."""
    comment = (
        Comment.objects.filter(
            pk=pk, post__in=Post.objects.visible_to(user), visibility__in=visibilities_for(user)
        )
        .select_related("post", "post__account", "created_by")
        .first()
    )
    if comment is None:
        raise Http404("No such comment.")
    return comment


def may_delete(user: Any, comment: Comment) -> bool:
    """A comment's author, and owners and admins (a client's comment through a link included)."""
    if not (user.is_authenticated and user.is_active):
        return False
    return comment.created_by_id == user.pk or bool(user.is_agency_admin)


def mention_candidates(post: Post) -> QuerySet[User]:
    """Who a mention on `post` may name: the active team members who may see it. Client reviewers
    are left out: a mention tells them what the comment says, internal or not."""
    return users_with(Perm.VIEW, post.account).exclude(role=Role.CLIENT)


def users_to_tell_of_client_comment(post: Post) -> QuerySet[User]:
    """Besides the post's author: the team members who approve its account's posts."""
    return users_with(Perm.APPROVE, post.account).exclude(role=Role.CLIENT)
