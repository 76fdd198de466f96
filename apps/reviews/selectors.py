"""The gates of client links and the consent record: a link's token is the only key to its pages,
and a client is reached only through accounts the person may act on (apps.accounts.permissions)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, accounts_with
from apps.posts.models import MediaKind, Post, PostMedia, PostStatus
from apps.posts.selectors import post_content_hash
from apps.reviews.models import ClientLink, ConsentRecord, Decision
from apps.users.models import Role

PREFIX_LENGTH = 10
# What a review link may be sent for: posts no worker has taken yet.
REVIEWABLE_STATUSES = (PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED)
# The shared calendar: what is coming and what went out lately.
CALENDAR_PAST = dt.timedelta(days=30)
CALENDAR_AHEAD = dt.timedelta(days=60)
CALENDAR_STATUSES = (
    PostStatus.PENDING_APPROVAL,
    PostStatus.SCHEDULED,
    PostStatus.PUBLISHING,
    PostStatus.PROCESSING,
    PostStatus.PUBLISHED,
)
# Client reviewers decide on posts; they do not send links to other clients' people.
LINK_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER, Role.EDITOR})


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def link_for_token(raw: str, kind: str) -> ClientLink:
    """The usable link of `kind` that `raw` opens; 404 for anything else (unknown, altered,
    expired, revoked), alike, so that a page never says which."""
    prefix = raw[:PREFIX_LENGTH]
    link = ClientLink.objects.filter(prefix=prefix, kind=kind).first() if len(raw) > PREFIX_LENGTH else None
    if link is None or not hmac.compare_digest(link.token_hash, token_hash(raw)) or not link.is_usable:
        raise Http404("No such link.")
    return link


def client_accounts(label: str) -> QuerySet[TikTokAccount]:
    """A client's accounts: those sharing its label (removed ones left out)."""
    return TikTokAccount.objects.filter(client_label=label)


def link_posts(link: ClientLink) -> QuerySet[Post]:
    """The posts a review link covers, still of its client's accounts, soonest first."""
    return (
        link.posts.filter(account__client_label=link.client_label, deleted_at__isnull=True)
        .select_related("account")
        .order_by("scheduled_at", "created_at")
    )


def get_link_post(link: ClientLink, pk: Any) -> Post:
    post = link_posts(link).filter(pk=pk).first()
    if post is None:
        raise Http404("No such post.")
    return post


def get_link_media(link: ClientLink, pk: Any) -> PostMedia:
    """A file of a post the link covers, or 404."""
    media = PostMedia.objects.filter(pk=pk, post__in=link_posts(link)).first()
    if media is None:
        raise Http404("No such file.")
    return media


def calendar_posts(link: ClientLink, now: dt.datetime | None = None) -> QuerySet[Post]:
    """What a shared calendar shows: its client's posts of the last 30 days and the next 60."""
    now = now or timezone.now()
    return (
        Post.objects.filter(
            account__client_label=link.client_label,
            account__deleted_at__isnull=True,
            status__in=CALENDAR_STATUSES,
            scheduled_at__gte=now - CALENDAR_PAST,
            scheduled_at__lte=now + CALENDAR_AHEAD,
        )
        .with_account()
        .order_by("scheduled_at", "created_at")
    )


def with_media(posts: QuerySet[Post]) -> list[Post]:
    """Each post with `videos` and `photo_list` (in carousel order), in three queries."""
    from django.db.models import Prefetch

    return list(
        posts.prefetch_related(
            Prefetch("media", queryset=PostMedia.objects.filter(kind=MediaKind.VIDEO), to_attr="videos"),
            Prefetch(
                "media",
                queryset=PostMedia.objects.filter(kind=MediaKind.PHOTO).order_by("position"),
                to_attr="photo_list",
            ),
        )
    )


# --- The agency's side ---


def clients_for(user: Any, perm: Perm = Perm.APPROVE) -> list[str]:
    """The clients (labels) of the accounts on which `user` holds `perm`, for the links page."""
    if getattr(user, "role", None) not in LINK_ROLES:
        return []
    labels = accounts_with(user, perm).exclude(client_label="").values_list("client_label", flat=True)
    return sorted(set(labels))


def get_client_for_user(user: Any, label: str, perm: Perm = Perm.APPROVE) -> str:
    """The one gate to a client: 404 unless `user` holds `perm` on one of its accounts."""
    if not label or label not in clients_for(user, perm):
        raise Http404("No such client.")
    return label


def reviewable_posts(user: Any, label: str) -> QuerySet[Post]:
    """The posts a review link from `user` may cover: waiting or scheduled, on `label`'s accounts
    that `user` may approve."""
    return (
        Post.objects.visible_to(user, Perm.APPROVE)
        .filter(account__client_label=label, status__in=REVIEWABLE_STATUSES)
        .with_account()
        .order_by("scheduled_at", "created_at")
    )


def links_for(label: str) -> QuerySet[ClientLink]:
    return ClientLink.objects.filter(client_label=label).select_related("created_by").order_by("-created_at")


def get_link_for_user(user: Any, pk: Any) -> ClientLink:
    """A link of a client `user` may send links for, or 404."""
    link = ClientLink.objects.filter(pk=pk).first()
    if link is None or link.client_label not in clients_for(user):
        raise Http404("No such link.")
    return link


def consent_for(label: str) -> QuerySet[ConsentRecord]:
    return (
        ConsentRecord.objects.filter(client_label=label)
        .select_related("post", "user")
        .order_by("created_at", "id")
    )


# --- Consent at publish time ---


def latest_consent(post: Post) -> ConsentRecord | None:
    return ConsentRecord.objects.filter(post=post).order_by("-created_at", "-id").first()


def consent_refusal(post: Post) -> str:
    """Why `post` must not go out although its client approved it: it is no longer what they
    approved (apps.publishing.checks runs this before every init)."""
    consent = latest_consent(post)
    if consent is None or consent.decision != Decision.APPROVED:
        return ""
    if hmac.compare_digest(consent.content_hash, post_content_hash(post)):
        return ""
    when = date_format(timezone.localtime(consent.created_at), "j M Y, H:i")
    return (
        f"This post changed after {consent.reviewer_name} ({consent.client_label}) approved it on "
        f"{when}: what would go to TikTok is not what the client saw, so nothing was sent. "
        "Send the client a new review link for it."
    )
