"""Writing comments: validation, mentions, soft delete, and the notifications they cause."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from apps.audit.services import audit_record
from apps.comments.mentions import find_handles
from apps.comments.models import BODY_MAX, Comment, CommentMention, Visibility
from apps.comments.selectors import is_team, may_delete, mention_candidates
from apps.common.outbox import notification_emit
from apps.posts.models import Post
from apps.reviews.models import ClientLink
from apps.reviews.selectors import link_posts
from apps.users.models import Role, User

AUTHOR_NAME_MAX = 200
# A comment naming more people than this is a broadcast: the first ones are told.
MENTIONS_MAX = 20


class CommentError(Exception):
    """The comment is refused; the message says why (the form keeps what was typed)."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise CommentError("Write something before sending.")
    if len(body) > BODY_MAX:
        raise CommentError(f"Keep a comment to {BODY_MAX:,} characters ({len(body):,} now).")
    return body


def resolve_mentions(post: Post, body: str) -> list[tuple[User, str]]:
    """The people `body` mentions who may see `post`, each with the handle that named them.

    A handle names someone by their whole address, their address's local part, or their name
    without spaces (no case); a handle naming nobody, or more than one person, names no one."""
    handles = find_handles(body)[:MENTIONS_MAX]
    if not handles:
        return []
    people = list(mention_candidates(post))
    found: dict[Any, tuple[User, str]] = {}
    for handle in handles:
        wanted = handle.lower()
        if "@" in wanted:
            matches = [p for p in people if p.email.lower() == wanted]
        else:
            matches = [
                p
                for p in people
                if p.email.lower().split("@", 1)[0] == wanted or "".join(p.name.split()).lower() == wanted
            ]
        if len(matches) == 1 and matches[0].pk not in found:
            found[matches[0].pk] = (matches[0], handle)
    return list(found.values())


def comment_create(
    *,
    post: Post,
    body: str,
    visibility: str,
    by: User | None = None,
    link: ClientLink | None = None,
    author_name: str = "",
    request: HttpRequest | None = None,
) -> Comment:
    """A comment on `post` by a signed-in person (`by`) or by a client through a review `link`
    (with the name they typed). The caller has passed the post's gate (get_post_for_user, or
    get_link_post); this checks again what the comment itself may be.

    A client's comment (through a link, or from a client reviewer) tells the post's author and
    approvers; a team member's `@mentions` tell the people named who may see the post, and their
    comment tells the post's author (unless mentioned, or the author themselves)."""
    body = _clean_body(body)
    if visibility not in Visibility.values:
        raise CommentError("Choose which thread the comment goes to.", "visibility")
    if (by is None) == (link is None):
        raise ValueError("A comment has one author: a person or a client link.")
    comment = Comment(post=post, visibility=visibility, body=body)
    if link is not None:
        if visibility != Visibility.CLIENT:
            raise CommentError("Through a review link, comments go to the client thread.", "visibility")
        # One line: the name goes into notification titles and email subjects.
        name = " ".join(author_name.split())[:AUTHOR_NAME_MAX]
        if not name:
            raise CommentError("Type your name, so the agency knows who wrote.", "author_name")
        comment.link, comment.author_name, comment.client_label = link, name, link.client_label
    elif by is not None:
        if visibility == Visibility.INTERNAL and not is_team(by):
            raise CommentError("Your comments go to the thread the agency shares with you.", "visibility")
        comment.created_by = comment.updated_by = by
    with transaction.atomic():
        if link is not None:
            # The link was usable when the page opened; it must still be, and still cover the post.
            fresh = ClientLink.objects.select_for_update().get(pk=link.pk)
            if not fresh.is_usable or not link_posts(fresh).filter(pk=post.pk).exists():
                raise CommentError("This link no longer covers this post.")
        comment.save()
        mentioned = resolve_mentions(post, body) if by is not None and is_team(by) else []
        CommentMention.objects.bulk_create(
            [CommentMention(comment=comment, user=user, handle=handle) for user, handle in mentioned]
        )
        if link is not None or (by is not None and by.role == Role.CLIENT):
            notification_emit(kind="client_comment", obj=comment, key=str(comment.pk), actor=by)
        if mentioned:
            notification_emit(kind="comment_mention", obj=comment, key=str(comment.pk), actor=by)
        author_id = post.created_by_id
        if (
            link is None
            and by is not None
            and is_team(by)
            and author_id not in (None, by.pk)
            and author_id not in {user.pk for user, _ in mentioned}  # told of the mention already
        ):
            notification_emit(kind="post_comment", obj=comment, key=str(comment.pk), actor=by)
    return comment


def comment_delete(*, comment: Comment, by: User, request: HttpRequest | None = None) -> None:
    """Hide a comment (its author, or an owner or admin); the row stays, and the deletion is audited."""
    if not may_delete(by, comment):
        raise PermissionError("Only its author, an owner or an admin deletes a comment.")
    with transaction.atomic():
        comment.delete(by=by)
        audit_record(
            action="comment.deleted",
            actor=by,
            obj=comment.post,
            request=request,
            changes={
                "comment": str(comment.pk),
                "visibility": comment.visibility,
                "by": comment.author_label,
            },
        )
