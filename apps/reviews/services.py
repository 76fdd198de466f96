"""Client links and client decisions: the writes behind the links page and the review page."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.permissions import Perm, accounts_with
from apps.audit.services import audit_record
from apps.common.client_ip import client_ip
from apps.common.outbox import notification_emit
from apps.posts.models import MediaType, Post, PostMedia, PostStatus, ReviewOutcome
from apps.posts.selectors import PHOTO_FIELDS, TIKTOK_FIELDS, is_own_work, post_content_hash
from apps.posts.services import OWN_WORK, REVIEW_COMMENT_MAX
from apps.publishing.jobs import job_delete, job_lock, job_set
from apps.publishing.models import JobKind
from apps.reviews.models import ClientLink, ConsentRecord, Decision, LinkKind
from apps.reviews.selectors import (
    PREFIX_LENGTH,
    REVIEWABLE_STATUSES,
    client_accounts,
    clients_for,
    reviewable_posts,
    token_hash,
)

# How long a link opens, in days: the default and the longest a person may choose.
LINK_DAYS = {LinkKind.REVIEW: (7, 30), LinkKind.CALENDAR: (30, 90)}
REVIEWER_NAME_MAX = 200


class ReviewError(Exception):
    """The link or decision is refused; the message says why (and the form keeps what was typed)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _new_token() -> tuple[str, str]:
    """A fresh token and its lookup prefix; only its hash is stored."""
    while True:
        raw = secrets.token_urlsafe(32)
        prefix = raw[:PREFIX_LENGTH]
        if not ClientLink.objects.filter(prefix=prefix).exists():
            return raw, prefix


@transaction.atomic
def client_link_create(
    *,
    kind: str,
    client_label: str,
    days: int,
    by: Any,
    posts: Iterable[Post] = (),
    recipient: str = "",
    request: HttpRequest | None = None,
) -> tuple[ClientLink, str]:
    """Make a link for a client and return it with its token, which is shown once and never kept.

    A review link covers `posts` (waiting or scheduled posts of the client's accounts that `by`
    may approve); a shared calendar, the client's accounts, so `by` must see all of them."""
    if client_label not in clients_for(by):
        raise ReviewError("You may not send links for this client.")
    longest = LINK_DAYS[LinkKind(kind)][1]
    if not 1 <= days <= longest:
        raise ReviewError(f"Choose between 1 and {longest} days.", "days")
    chosen = list(posts)
    if kind == LinkKind.REVIEW:
        allowed = set(reviewable_posts(by, client_label).values_list("pk", flat=True))
        if not chosen:
            raise ReviewError("Choose the posts the client should review.", "posts")
        if any(post.pk not in allowed for post in chosen):
            raise ReviewError("Some of those posts can no longer be reviewed. Choose again.", "posts")
    else:
        visible = set(accounts_with(by, Perm.VIEW).values_list("pk", flat=True))
        if not set(client_accounts(client_label).values_list("pk", flat=True)) <= visible:
            raise ReviewError(
                "You may not see every account of this client, so you cannot share its calendar."
            )
        chosen = []
    raw, prefix = _new_token()
    link = ClientLink.objects.create(
        kind=kind,
        client_label=client_label,
        recipient=recipient.strip()[:200],
        prefix=prefix,
        token_hash=token_hash(raw),
        expires_at=timezone.now() + dt.timedelta(days=days),
        created_by=by,
        updated_by=by,
    )
    link.posts.set(chosen)
    audit_record(
        action="client_link.created",
        actor=by,
        obj=link,
        request=request,
        changes={
            "kind": kind,
            "client": client_label,
            "recipient": link.recipient,
            "expires_at": link.expires_at.isoformat(),
            "posts": sorted(str(post.pk) for post in chosen),
        },
    )
    return link, raw


@transaction.atomic
def client_link_revoke(*, link: ClientLink, by: Any, request: HttpRequest | None = None) -> bool:
    """Close a link for good. False when it already was."""
    locked = ClientLink.objects.select_for_update().get(pk=link.pk)
    if locked.revoked_at is not None:
        return False
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    locked.updated_by = by
    locked.save(update_fields=["revoked_at", "revoked_by", "updated_by", "updated_at"])
    audit_record(
        action="client_link.revoked",
        actor=by,
        obj=locked,
        request=request,
        changes={"kind": locked.kind, "client": locked.client_label},
    )
    return True


def post_content_snapshot(post: Post) -> dict[str, Any]:
    """What a reviewer saw, field by field, as the consent record keeps it."""
    fields = TIKTOK_FIELDS + (PHOTO_FIELDS if post.media_type == MediaType.PHOTO else ("media_type",))
    files = PostMedia.objects.filter(post=post).order_by("kind", "position", "created_at")
    return {
        "account": str(post.account_id),
        "account_name": str(post.account),
        "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
        **{field: getattr(post, field) for field in fields},
        "files": [
            {"kind": kind, "position": position, "sha256": sha256, "name": name}
            for kind, position, sha256, name in files.values_list(
                "kind", "position", "sha256", "original_name"
            )
        ],
    }


def review_decide(
    *,
    post: Post,
    decision: str,
    seen_hash: str,
    reviewer_name: str = "",
    comment: str = "",
    link: ClientLink | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> ConsentRecord:
    """A client's decision on `post`, through a review `link` or as a signed-in client `user`.

    `seen_hash` is the post's content hash as the page showed it: the decision is about that
    version or none. Approving schedules a waiting post (a scheduled one stays so) and binds it to
    that version (the worker refuses any other, apps.publishing.checks); rejecting or asking for
    changes sends it back to the agency as a draft with the comment. Every decision is appended to
    the client's consent record and audited."""
    decision = Decision(decision)
    comment = comment.strip()
    name = (reviewer_name.strip() or (user.get_full_name() or user.email if user is not None else ""))[
        :REVIEWER_NAME_MAX
    ]
    if not name:
        raise ReviewError("Type your name, so the agency knows who decided.", "reviewer_name")
    if decision != Decision.APPROVED and not comment:
        raise ReviewError("Say what should change, so the agency can fix it.", "comment")
    if len(comment) > REVIEW_COMMENT_MAX:
        raise ReviewError(
            f"Keep the comment under {REVIEW_COMMENT_MAX:,} characters ({len(comment):,} now).", "comment"
        )
    with transaction.atomic():
        job_lock(post_id=post.pk)  # the job row, then the post: the dispatcher's order
        locked = Post.objects.select_for_update().select_related("account").get(pk=post.pk)
        label = locked.account.client_label
        if link is not None and (link.client_label != label or not link.is_usable):
            raise ReviewError("This link no longer covers this post.")
        if locked.status not in REVIEWABLE_STATUSES:
            raise ReviewError(
                f"This post is {locked.get_status_display().lower()}, so it can no longer be reviewed."
            )
        if user is not None and is_own_work(user, locked):
            raise ReviewError(OWN_WORK)
        current = post_content_hash(locked)
        if not hmac.compare_digest(seen_hash.encode(), current.encode()):
            raise ReviewError(
                "It changed after you opened this page. Look at it again as it is now, then decide."
            )
        now = timezone.now()
        previous = locked.status
        if decision == Decision.APPROVED:
            due = locked.scheduled_at
            if due is None or due < now - dt.timedelta(seconds=5):
                raise ReviewError(
                    "Its time has passed, so it was not approved. Ask for changes so the agency can "
                    "choose a new time."
                )
            locked.status = PostStatus.SCHEDULED
            locked.review_outcome = ReviewOutcome.APPROVED
            locked.review_comment = ""
            locked.approved_content_hash = current
            job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=due)
        else:
            locked.status = PostStatus.DRAFT
            locked.review_outcome = ReviewOutcome.REJECTED
            locked.review_comment = (
                comment if decision == Decision.REJECTED else f"Changes requested: {comment}"
            )[: REVIEW_COMMENT_MAX + 20]
            locked.approved_content_hash = ""
            job_delete(post_id=locked.pk)
        locked.reviewed_by = user
        locked.reviewed_at = now
        if user is not None:
            locked.updated_by = user
        locked.save()
        record = ConsentRecord.objects.create(
            created_at=now,
            client_label=label,
            post=locked,
            link=link,
            user=user,
            reviewer_name=name,
            decision=decision,
            comment=comment,
            content_hash=current,
            content=post_content_snapshot(locked),
            ip=client_ip(request) if request is not None else None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500] if request is not None else "",
        )
        audit_record(
            action=f"review.{decision}",
            actor=user,
            obj=locked,
            request=request,
            changes={
                "status": [previous, locked.status],
                "client": label,
                "reviewer": name,
                "via": f"link {link.pk}" if link is not None else "signed in",
                "content_hash": current,
                "comment": comment,
            },
        )
        said = f"{name} ({label})"
        if decision == Decision.APPROVED:
            notification_emit(
                kind="post_approved",
                obj=locked,
                key=f"{locked.pk}:{now.isoformat()}",
                actor=user,
                message=f"Approved by {said}.",
            )
        else:
            notification_emit(
                kind="post_rejected",
                obj=locked,
                key=f"{locked.pk}:{now.isoformat()}",
                actor=user,
                comment=f"{decision.label} by {said}: {comment}",
            )
    return record
