"""Connected TikTok accounts: connecting, keeping tokens fresh, disconnecting, stats.

Token rules (TIKTOK_API.md): refresh ahead of expiry from the stored lifetimes; one refresh
per account at a time (a row lock), so rotation can never lose the newest refresh token;
a refresh TikTok refuses marks the account `needs_reauth` with the reason; reconnecting
never overwrites a stored refresh token with an empty one; disconnecting revokes at TikTok.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.analytics.models import AccountSnapshot, VideoSnapshot
from apps.audit.services import audit_record
from apps.common.crypto import Secret
from apps.common.outbox import notification_emit
from apps.posts.models import Post, PostStatus
from apps.tiktok.client import CreatorInfo, TikTokClient, TokenGrant, UserInfo, Video
from apps.tiktok.errors import TikTokError
from apps.tiktok.models import TikTokRoute
from apps.tiktok.scopes import user_fields

logger = logging.getLogger(__name__)


class AccountNeedsReauth(Exception):
    """The account's authorisation is gone; a person must reconnect it."""

    def __init__(self, account: TikTokAccount, reason: str) -> None:
        self.account = account
        self.reason = reason
        super().__init__(reason)


def _expiry(seconds: int) -> dt.datetime | None:
    return timezone.now() + dt.timedelta(seconds=seconds) if seconds > 0 else None


def _store_grant(account: TikTokAccount, grant: TokenGrant) -> None:
    account.access_token = grant.access_token
    account.access_expires_at = _expiry(grant.expires_in)
    # Never replace a stored refresh token with nothing.
    if grant.refresh_token:
        account.refresh_token = grant.refresh_token
        account.refresh_expires_at = _expiry(grant.refresh_expires_in)
    if grant.scopes:
        account.granted_scopes = sorted(grant.scopes)


class AnalyticsScopesMissing(Exception):
    """The account did not grant the scopes a stats snapshot reads; its analytics page says so."""

    def __init__(self, account: TikTokAccount) -> None:
        self.account = account
        super().__init__(f"{account} did not grant {', '.join(s for s, _ in account.missing_analytics)}")


class ReconnectRefused(Exception):
    """The TikTok account is connected here already and the user may not manage its connection."""

    def __init__(self, account: TikTokAccount) -> None:
        self.account = account
        super().__init__(
            f"{account} is already known to this agency, and you do not manage its connection, so "
            "nothing was changed. Ask an owner, an admin or whoever manages it to connect it."
        )


def account_connect(
    *, grant: TokenGrant, user_info: UserInfo, by: Any, agency: Any, request: Any = None
) -> tuple[TikTokAccount, bool]:
    """Store or update the account for a completed OAuth grant. Returns (account, created).

    Runs in the agency's schema; also records open_id → agency in the public routing table.
    A previously removed account with the same open_id is restored, not duplicated. Connecting an
    account this agency already knows (connected or removed) takes "manage connection" on it and
    grants nothing (otherwise knowing a client's TikTok password would be a way round the Team
    page): `ReconnectRefused`. Only a new account is granted to whoever connects it.
    """
    from apps.accounts.permissions import Perm, user_may

    with transaction.atomic():
        account = TikTokAccount.all_objects.select_for_update().filter(open_id=grant.open_id).first()
        created = account is None
        # A disconnected account keeps its grants: bringing it back takes managing it too. `by`
        # None: the system itself (no person to check).
        if account is not None and by is not None and not user_may(by, Perm.MANAGE, account):
            raise ReconnectRefused(account)
        if account is None:
            account = TikTokAccount(open_id=grant.open_id, created_by=by)
        elif account.is_deleted:
            account.deleted_at = None
            account.deleted_by = None
        _store_grant(account, grant)
        account.username = user_info.username or account.username
        account.display_name = user_info.display_name or account.display_name
        account.avatar_url = user_info.avatar_url or account.avatar_url
        for name in ("follower_count", "following_count", "likes_count", "video_count"):
            value = getattr(user_info, name)
            if value is not None:
                setattr(account, name, value)
        previous_status = account.status
        account.status = AccountStatus.ACTIVE
        account.status_reason = ""
        account.updated_by = by
        account.save()
        with schema_context(get_public_schema_name()):
            TikTokRoute.objects.get_or_create(open_id=grant.open_id, agency=agency)
        if created:
            _grant_to_connector(account, by, request)
        audit_record(
            action="account.connected" if created else "account.reconnected",
            actor=by,
            obj=account,
            request=request,
            changes={
                "status": [None if created else previous_status, AccountStatus.ACTIVE],
                "scopes": sorted(grant.scopes),
            },
        )
    from apps.accounts.tasks import accounts_sync_stats
    from tenants.dramatiq import send_on_commit

    send_on_commit(accounts_sync_stats, str(account.pk))
    return account, created


def _grant_to_connector(account: TikTokAccount, user: Any, request: Any) -> None:
    """Whoever completes the OAuth consent for an account holds the creator's authorisation:
    they get their role's permissions on it and may manage its connection."""
    from apps.accounts.permissions import ROLE_DEFAULTS, Perm, access_set, access_table, holds_every_account

    if user is None or holds_every_account(user):
        return
    held = access_table(user).get(account.pk, frozenset())
    wanted = held | ROLE_DEFAULTS[user.role] | {Perm.MANAGE}
    if wanted != held:
        access_set(user=user, account=account, perms=wanted, by=user, request=request)


def account_set_requires_approval(
    *, account: TikTokAccount, requires_approval: bool, by: Any, request: Any = None
) -> TikTokAccount:
    """Choose whether posts for this account wait for approval (posts already scheduled stay)."""
    with transaction.atomic():
        locked = TikTokAccount.objects.select_for_update().get(pk=account.pk)
        if locked.requires_approval == requires_approval:
            return locked
        locked.requires_approval = requires_approval
        locked.updated_by = by
        locked.save(update_fields=["requires_approval", "updated_by", "updated_at"])
        audit_record(
            action="account.approval_changed",
            actor=by,
            obj=locked,
            request=request,
            changes={"requires_approval": [not requires_approval, requires_approval]},
        )
    return locked


CLIENT_LABEL_MAX = 128


def account_set_client_label(*, account: TikTokAccount, label: str, by: Any, request: Any = None) -> bool:
    """Name the agency's client an account belongs to (blank: none). Returns whether it changed.
    Raises ValueError with a sentence for a person when the name is too long."""
    label = " ".join(label.split())
    if len(label) > CLIENT_LABEL_MAX:
        raise ValueError(
            f"Keep the client's name to {CLIENT_LABEL_MAX} characters at most ({len(label)} now)."
        )
    with transaction.atomic():
        locked = TikTokAccount.objects.select_for_update().get(pk=account.pk)
        if locked.client_label == label:
            return False
        previous = locked.client_label
        locked.client_label = label
        locked.updated_by = by
        locked.save(update_fields=["client_label", "updated_by", "updated_at"])
        audit_record(
            action="account.client_changed",
            actor=by,
            obj=locked,
            request=request,
            changes={"client": {"old": previous, "new": label}},
        )
    return True


def account_mark_needs_reauth(*, account_id: Any, reason: str, code: str = "") -> TikTokAccount:
    with transaction.atomic():
        account = TikTokAccount.all_objects.select_for_update().get(pk=account_id)
        if account.status != AccountStatus.NEEDS_REAUTH or account.status_reason != reason:
            previous = account.status
            account.status = AccountStatus.NEEDS_REAUTH
            account.status_reason = reason
            account.save(update_fields=["status", "status_reason", "updated_at"])
            audit_record(
                action="account.needs_reauth",
                obj=account,
                changes={"status": [previous, AccountStatus.NEEDS_REAUTH], "code": code, "reason": reason},
            )
            notification_emit(
                kind="account_needs_reauth", obj=account, key=f"{account.pk}:{account.updated_at}"
            )
    return account


def account_refresh_tokens(
    *, account_id: Any, force: bool = False, client: TikTokClient | None = None
) -> TikTokAccount:
    """Refresh the account's tokens unless someone else just did. One refresh per account at a time.

    The row lock serialises concurrent callers: the second one, once it gets the lock, finds
    fresh tokens and returns them instead of spending (and so invalidating) the refresh token.
    """
    client = client or TikTokClient()
    margin = dt.timedelta(seconds=settings.TIKTOK_REFRESH_MARGIN_SECONDS)
    refused: TikTokError | None = None
    with transaction.atomic():
        account = TikTokAccount.objects.select_for_update().get(pk=account_id)
        fresh = account.access_expires_at is not None and account.access_expires_at > timezone.now() + margin
        if fresh and not force:
            return account
        if not account.refresh_token:
            refused = TikTokError("invalid_grant", "No refresh token is stored.", endpoint="refresh")
        else:
            try:
                grant = client.refresh(refresh_token=account.refresh_token)
            except TikTokError as exc:
                if not exc.needs_reauth:
                    raise
                refused = exc
            else:
                _store_grant(account, grant)
                account.save()
                logger.info("Refreshed tokens of account %s", account.pk)
                return account
    reason = refused.human_message()
    account_mark_needs_reauth(account_id=account_id, reason=reason, code=refused.code)
    raise AccountNeedsReauth(account, reason)


def account_access_token(*, account: TikTokAccount, client: TikTokClient | None = None) -> Secret:
    """A working access token for the account, refreshed first when it is about to expire."""
    if account.status in (AccountStatus.NEEDS_REAUTH, AccountStatus.REVOKED):
        raise AccountNeedsReauth(account, account.status_reason or "The account must be reconnected.")
    margin = dt.timedelta(seconds=settings.TIKTOK_REFRESH_MARGIN_SECONDS)
    if account.access_expires_at is None or account.access_expires_at <= timezone.now() + margin:
        account = account_refresh_tokens(account_id=account.pk, client=client)
    token: Secret = account.access_token
    return token


_CREATOR_INFO_KEY = "tiktok:creator-info:{}"


def account_creator_info(
    *, account: TikTokAccount, access_token: Secret, client: TikTokClient
) -> CreatorInfo:
    """What TikTok says the account may post, asked at most once per
    TIKTOK_CREATOR_INFO_CACHE_SECONDS and shared by the composer and the worker (the cache key
    carries the agency's schema): TikTok allows 20 creator_info calls a minute per token, and
    drafting must not use up what the publisher needs. Only answers are kept, never refusals."""
    key = _CREATOR_INFO_KEY.format(account.pk)
    cached = cache.get(key)
    if isinstance(cached, CreatorInfo):
        return cached
    info = client.creator_info(access_token=access_token)
    cache.set(key, info, timeout=settings.TIKTOK_CREATOR_INFO_CACHE_SECONDS)
    return info


def account_creator_info_forget(*, account: TikTokAccount) -> None:
    cache.delete(_CREATOR_INFO_KEY.format(account.pk))


def account_disconnect(
    *, account: TikTokAccount, by: Any, request: Any = None, client: TikTokClient | None = None
) -> int:
    """Revoke at TikTok (best effort: a failure there still disconnects here) and remove the account.
    Returns how many waiting posts went back to drafts."""
    client = client or TikTokClient()
    revoke_error = ""
    if account.access_token:
        try:
            client.revoke(token=account.access_token)
        except TikTokError as exc:
            revoke_error = exc.code
            logger.warning("Revoking account %s at TikTok failed: %s", account.pk, exc.code)
    with transaction.atomic():
        locked = TikTokAccount.objects.select_for_update().get(pk=account.pk)
        moved = _unschedule_posts_of(locked, by=by, request=request)
        locked.status = AccountStatus.REVOKED
        locked.status_reason = "Disconnected in Postline."
        locked.access_token = Secret("")
        locked.refresh_token = Secret("")
        locked.access_expires_at = None
        locked.refresh_expires_at = None
        locked.updated_by = by
        locked.save()
        locked.delete(by=by)
        audit_record(
            action="account.disconnected",
            actor=by,
            obj=locked,
            request=request,
            changes={"revoked_at_tiktok": not revoke_error, "revoke_error": revoke_error},
        )
    return moved


def posts_waiting_for(account: TikTokAccount) -> QuerySet[Post]:
    """The account's posts that would still go out: scheduled or waiting for approval."""
    return Post.objects.filter(
        account=account, status__in=(PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL)
    ).order_by("scheduled_at")


def _unschedule_posts_of(account: TikTokAccount, *, by: Any, request: Any) -> int:
    """Disconnecting takes the account's waiting posts off the schedule (back to drafts, saying
    why), so nobody learns at publish time that they could not go out. Locks each post's job row
    and then the post, the dispatcher's order; a post a worker has claimed is left to it."""
    from apps.publishing.jobs import job_delete, job_lock

    when = timezone.localdate().strftime("%d %B %Y")
    message = (
        f"{account} was disconnected on {when}, so this post was taken off the schedule. "
        "Connect the account again, then schedule the post."
    )
    moved = 0
    for post_id in posts_waiting_for(account).values_list("pk", flat=True):
        job_lock(post_id=post_id)
        post = Post.objects.select_for_update().get(pk=post_id)
        if post.status not in (PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL):
            continue  # claimed meanwhile
        previous = post.status
        post.status = PostStatus.DRAFT
        post.last_error_code = "account_disconnected"
        post.last_error_message = message
        # An approval was for going out then; scheduled again, it is asked for again.
        post.review_outcome, post.review_comment, post.reviewed_by, post.reviewed_at = "", "", None, None
        post.approved_content_hash = ""
        post.updated_by = by
        post.save(
            update_fields=[
                "status",
                "last_error_code",
                "last_error_message",
                "review_outcome",
                "review_comment",
                "reviewed_by",
                "reviewed_at",
                "approved_content_hash",
                "updated_by",
                "updated_at",
            ]
        )
        job_delete(post_id=post.pk)
        audit_record(
            action="post.unscheduled",
            actor=by,
            obj=post,
            request=request,
            changes={"status": [previous, PostStatus.DRAFT], "reason": "account disconnected"},
        )
        moved += 1
    return moved


def account_authorization_removed(*, open_id: str) -> TikTokAccount | None:
    """TikTok told us the creator removed our access: the account is revoked here too."""
    with transaction.atomic():
        account = TikTokAccount.objects.select_for_update().filter(open_id=open_id).first()
        if account is None or account.status == AccountStatus.REVOKED:
            return account
        previous = account.status
        account.status = AccountStatus.REVOKED
        account.status_reason = "The creator removed Postline's access on TikTok. Reconnect to post again."
        account.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            action="account.authorization_removed",
            obj=account,
            changes={"status": [previous, AccountStatus.REVOKED]},
        )
        notification_emit(kind="account_revoked", obj=account, key=f"{account.pk}:{account.updated_at}")
    return account


class TokensNotRevoked(Exception):
    """TikTok could not be reached (or asked us to wait) for some accounts: try again later."""


def accounts_revoke_all(*, reason: str, client: TikTokClient | None = None) -> int:
    """Revoke every connected account's grant at TikTok and wipe its tokens here (offboarding:
    the agency was deleted). Each outcome is recorded in the agency's audit log.

    An account TikTok refused to revoke for good (its token already dead, say) is wiped all the
    same. When TikTok could not be reached for some, their tokens are kept, so that a retry can
    revoke them, and TokensNotRevoked is raised. Returns how many accounts were revoked."""
    client = client or TikTokClient()
    revoked = 0
    pending: list[str] = []
    for account in TikTokAccount.all_objects.exclude(access_token="", refresh_token="").order_by("pk"):
        error: TikTokError | None = None
        try:
            client.revoke(token=account.access_token or account.refresh_token)
        except TikTokError as exc:
            error = exc
            logger.warning("Revoking account %s at TikTok failed: %s", account.pk, exc.code)
        later = error is not None and error.retryable
        with transaction.atomic():
            if not later:
                previous = account.status
                TikTokAccount.all_objects.filter(pk=account.pk).update(
                    status=AccountStatus.REVOKED,
                    status_reason=reason,
                    access_token=Secret(""),
                    refresh_token=Secret(""),
                    access_expires_at=None,
                    refresh_expires_at=None,
                    updated_at=timezone.now(),
                )
                revoked += 1
            audit_record(
                action="account.revoked" if not later else "account.revoke_failed",
                obj=account,
                changes={
                    "reason": reason,
                    "revoked_at_tiktok": error is None,
                    "revoke_error": error.code if error else "",
                    **({"status": [previous, AccountStatus.REVOKED]} if not later else {}),
                    **({"retried": True} if later else {}),
                },
            )
        if later:
            pending.append(str(account.pk))
    if pending:
        raise TokensNotRevoked(f"{len(pending)} account(s) not revoked yet: {', '.join(pending)}")
    return revoked


def account_sync_stats(*, account: TikTokAccount, client: TikTokClient | None = None) -> AccountSnapshot:
    """Take today's snapshot: profile counts from user info, video totals from the video list,
    and one row per video (linked to our post when we published it) for the per-video charts."""
    client = client or TikTokClient()
    if not account.collects_stats:
        raise AnalyticsScopesMissing(account)
    token = account_access_token(account=account, client=client)
    info = client.user_info(access_token=token, fields=user_fields(account.granted_scopes))
    videos: dict[str, Video] = {}
    cursor: int | None = None
    for _ in range(50):  # at most 1,000 videos per day's snapshot
        page = client.video_list(access_token=token, cursor=cursor)
        for video in page.videos:
            if video.id:
                videos.setdefault(video.id, video)
        if not page.has_more or page.cursor is None:
            break
        cursor = page.cursor
    views = sum(video.view_count for video in videos.values())
    likes = sum(video.like_count for video in videos.values())
    comments = sum(video.comment_count for video in videos.values())
    shares = sum(video.share_count for video in videos.values())
    today = timezone.now().date()
    with transaction.atomic():
        previous = AccountSnapshot.objects.filter(account=account, date__lt=today).order_by("-date").first()
        followers = info.follower_count or 0
        engagement = Decimal(likes + comments + shares) / Decimal(views) if views else Decimal(0)
        snapshot, _ = AccountSnapshot.objects.update_or_create(
            account=account,
            date=today,
            defaults={
                "followers": followers,
                "following": info.following_count or 0,
                "likes": info.likes_count or 0,
                "videos": info.video_count or 0,
                "views": views,
                "comments": comments,
                "shares": shares,
                "follower_growth": followers - previous.followers if previous else 0,
                "engagement_rate": min(engagement, Decimal("9.999999")).quantize(Decimal("0.000001")),
            },
        )
        posts = dict(
            Post.objects.filter(account=account, published_post_id__in=list(videos)).values_list(
                "published_post_id", "pk"
            )
        )
        VideoSnapshot.objects.bulk_create(
            [
                VideoSnapshot(
                    account=account,
                    post_id=posts.get(video.id),
                    video_id=video.id,
                    date=today,
                    title=video.title[:300],
                    posted_at=(
                        dt.datetime.fromtimestamp(video.create_time, tz=dt.UTC) if video.create_time else None
                    ),
                    views=video.view_count,
                    likes=video.like_count,
                    comments=video.comment_count,
                    shares=video.share_count,
                )
                for video in videos.values()
            ],
            update_conflicts=True,
            unique_fields=["account", "video_id", "date"],
            update_fields=[
                "post",
                "title",
                "posted_at",
                "views",
                "likes",
                "comments",
                "shares",
                "updated_at",
            ],
        )
        TikTokAccount.objects.filter(pk=account.pk).update(
            follower_count=info.follower_count,
            following_count=info.following_count,
            likes_count=info.likes_count,
            video_count=info.video_count,
            stats_synced_at=timezone.now(),
        )
    return snapshot
