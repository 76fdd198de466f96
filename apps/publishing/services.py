"""Publishing a claimed post to TikTok, and following it until TikTok says how it went.

At most once: the call that creates the post at TikTok (init) is preceded by a committed
`PublishAttempt(kind=init, outcome=pending)` and followed by committing `publish_id` in
its own transaction, before any upload. If a worker finds a pending init without a
`publish_id`, the outcome at TikTok is unknown and the post goes to a person
(`needs_attention`), never to another init. A timeout or dropped connection on init, or
a 5xx answer to it, does the same. Upload and status checks are safe to repeat: the
upload resumes from TikTok's reported progress, and status is polled by its own job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from apps.accounts.models import AccountStatus
from apps.accounts.posting_limits import posting_limit_for, posting_limit_lift, posting_limit_record
from apps.accounts.services import (
    AccountNeedsReauth,
    account_access_token,
    account_creator_info,
    account_refresh_tokens,
)
from apps.audit.services import audit_record
from apps.common.crypto import Secret
from apps.common.expressions import ClockTimestamp, db_in, db_now
from apps.common.metrics import post_final_count, publish_lateness_observe
from apps.common.outbox import notification_emit
from apps.media.storage import media_storage, read_ahead
from apps.posts.media import video_problem
from apps.posts.models import (
    AttemptKind,
    AttemptOutcome,
    MediaKind,
    MediaType,
    Post,
    PostMedia,
    PostStatus,
    PrivacyLevel,
    PublishAttempt,
    PublishMode,
)
from apps.posts.photos import NO_MEDIA_DOMAIN, media_base_url, photo_url, photos_problem
from apps.posts.services import media_facts, media_probe_if_needed, post_photos
from apps.publishing.checks import publish_refusal
from apps.publishing.jobs import Lease, job_delete, job_held, job_set, job_take
from apps.publishing.leases import Held, LeaseLost, lease_kept
from apps.publishing.models import DueJob, JobKind
from apps.tiktok.client import CreatorInfo, TikTokClient
from apps.tiktok.errors import (
    NOT_SENT_CODES,
    ErrorKind,
    RateLimited,
    TikTokError,
    fail_reason_kind,
    human_message,
)
from apps.tiktok.uploads import chunk_plan
from tenants.db import connection
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)

POLL_GIVE_UP_AFTER = dt.timedelta(hours=72)
UPLOAD_TRIES_PER_CHUNK = 4

UNKNOWN_OUTCOME = (
    "We asked TikTok to create this post but never learned whether it did. Check the account on "
    "TikTok, then mark the post as published (with its TikTok id) or retry it."
)


# --- Status changes ---


def _finish(
    post: Post,
    status: str,
    *,
    code: str = "",
    message: str = "",
    only_from: tuple[str, ...] = (),
    **fields: Any,
) -> None:
    """Move the post to a new status (in its own transaction) and drop or keep its jobs.
    With `only_from`, nothing happens unless the post is still in one of those statuses
    (a webhook may have told us the outcome first)."""
    with transaction.atomic():
        rows = Post.objects.filter(pk=post.pk)
        if only_from and not rows.filter(status__in=only_from).exists():
            return
        rows.update(
            status=status,
            last_error_code=code[:100],
            last_error_message=message,
            updated_at=ClockTimestamp(),
            **fields,
        )
        final = status in (PostStatus.FAILED, PostStatus.NEEDS_ATTENTION, PostStatus.CANCELLED)
        if final or (status == PostStatus.PUBLISHED and fields.get("published_post_id")):
            job_delete(post_id=post.pk)
        actions: dict[str, str] = {
            PostStatus.PUBLISHED: "post.published",
            PostStatus.FAILED: "post.failed",
            PostStatus.NEEDS_ATTENTION: "post.needs_attention",
            PostStatus.PROCESSING: "post.uploaded",
        }
        audit_record(
            action=actions.get(status, f"post.{status}"),
            obj=post,
            changes={"status": [post.status, status], "code": code, "message": message},
        )
        if status in (PostStatus.FAILED, PostStatus.NEEDS_ATTENTION, PostStatus.PUBLISHED):
            notification_emit(
                kind=f"post_{status}", obj=post, key=f"{post.pk}:{post.publish_attempts}", message=message
            )
    if post.status != status:
        post_final_count(status)
    post.status = status
    logger.info("Post %s is now %s %s", post.pk, status, code)


def _fail(post: Post, message: str, code: str = "") -> None:
    _finish(post, PostStatus.FAILED, code=code, message=message)


def _needs_attention(post: Post, message: str, code: str = "") -> None:
    _finish(post, PostStatus.NEEDS_ATTENTION, code=code, message=message)


def _retry_later(post: Post, error: TikTokError) -> None:
    """Before init: put the post back in the queue after a backoff, or fail once out of tries.

    Our own rate limit holding a call back is not a failure: it only waits for its slot."""
    if isinstance(error, RateLimited):
        with transaction.atomic():
            job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_in=max(1.0, error.retry_after))
        return
    tries = (
        PublishAttempt.objects.filter(
            post=post, attempt_number=post.publish_attempts, outcome=AttemptOutcome.RETRYABLE
        )
        .exclude(error_code="rate_limited_locally")  # waiting for a slot is not a try
        .count()
    )
    if tries > len(settings.PUBLISH_PREPARE_BACKOFF):
        _fail(post, f"{error.human_message()} We gave up after {tries} tries.", error.code)
        return
    backoff = settings.PUBLISH_PREPARE_BACKOFF
    delay: float = backoff[max(0, min(tries, len(backoff)) - 1)]
    if error.http_status == 429:
        # TikTok's own limit: never before it said, nor before its minute (and a margin) is over.
        delay = max(delay, error.retry_after or 0, settings.TIKTOK_RATE_LIMIT_RETRY_SECONDS)
    with transaction.atomic():
        Post.objects.filter(pk=post.pk).update(
            last_error_code=error.code[:100], last_error_message=error.human_message()
        )
        job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_in=delay)


# --- Attempts ---


@contextmanager
def _attempt(
    post: Post,
    kind: str,
    on_success: Callable[[], None] | None = None,
    *,
    client: TikTokClient | None = None,
) -> Iterator[PublishAttempt]:
    """Record one call to TikTok: the row is committed before the call and completed after
    (together with `on_success`, in one transaction), with TikTok's log id from `client`."""
    attempt = PublishAttempt.objects.create(
        post=post, attempt_number=max(1, post.publish_attempts), kind=kind, started_at=db_now()
    )
    try:
        yield attempt
    except TikTokError as exc:
        attempt.outcome = {
            ErrorKind.RETRYABLE: AttemptOutcome.UNKNOWN if exc.maybe_applied else AttemptOutcome.RETRYABLE,
            ErrorKind.FINAL: AttemptOutcome.FINAL,
            ErrorKind.REAUTH: AttemptOutcome.NEEDS_REAUTH,
        }[exc.kind]
        attempt.http_status = exc.http_status
        attempt.error_code = exc.code[:100]
        attempt.error_message = (exc.message or exc.human_message())[:2000]
        attempt.log_id = exc.log_id[:128]
        attempt.finished_at = db_now()
        attempt.save()
        raise
    attempt.outcome = AttemptOutcome.OK
    attempt.log_id = client.last_log_id[:128] if client is not None else ""
    attempt.finished_at = db_now()
    with transaction.atomic():
        if on_success is not None:
            on_success()
        attempt.save()


def _with_token[T](post: Post, client: TikTokClient, call: Callable[[Secret], T], kind: str) -> T:
    """Make a token call; on an expired token, refresh once and call again (the publish goes on)."""
    token = account_access_token(account=post.account, client=client)
    try:
        with _attempt(post, kind, client=client):
            return call(token)
    except TikTokError as exc:
        if exc.code != "access_token_invalid":
            raise
    account = account_refresh_tokens(account_id=post.account_id, force=True, client=client)
    post.account = account
    with _attempt(post, kind, client=client):
        return call(account.access_token)


# --- Publish ---


def _take(post: Post, kind: str) -> Lease | None:
    lease = settings.PUBLISH_LEASE_SECONDS if kind == JobKind.PUBLISH else settings.POLL_LEASE_SECONDS
    return job_take(post_id=post.pk, kind=kind, lease_seconds=lease)


def _still_working(held: Held) -> None:
    """Renew the publish job's lease after each step (a TikTok call, an uploaded chunk), besides
    the keeper's renewals during a step (leases.py): however long an upload takes, only a worker
    that has stopped loses its job to another. Raises LeaseLost once the lease is not this run's."""
    held.renew_now()


@contextmanager
def _post_lock(post_id: str) -> Iterator[bool]:
    """Only one worker works on a post at a time (a session advisory lock: a dead worker's
    connection closes and releases it)."""
    key = f"{connection.schema_name}:{post_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def post_publish(*, post_id: str, client: TikTokClient | None = None) -> None:
    """Publish a claimed post (status `publishing`), resuming wherever an earlier run stopped."""
    client = client or TikTokClient(max_wait=5.0)
    with _post_lock(post_id) as acquired:
        if not acquired:
            logger.info("Post %s is being published by another worker", post_id)
            return
        post = Post.objects.select_related("account").filter(pk=post_id).first()
        # Only a message for a claimed post whose job the dispatcher handed out is worked on: an
        # early, replayed or forged one changes nothing (the post keeps its job and its time).
        lease = None
        if post is not None and post.status == PostStatus.PUBLISHING:
            lease = _take(post, JobKind.PUBLISH)
        if post is None or lease is None:
            logger.info("Publish message for post %s ignored: the post is not waiting for it", post_id)
            return
        logger.info("Publishing post %s (start %d)", post_id, lease.start)
        with lease_kept(lease) as held:
            try:
                _publish_taken(post, client, held)
            except LeaseLost:
                # The job may be another worker's by now: this run changes nothing more.
                logger.warning("Stopped publishing post %s: its lease ran out", post_id)


def _publish_taken(post: Post, client: TikTokClient, held: Held) -> None:
    """Publish a post whose job this run holds, from wherever an earlier run stopped."""
    if post.publish_id:
        _upload(post, client, held)
        return
    # An init of this attempt was sent and the run that sent it stopped before settling the
    # post (a worker killed between TikTok's answer and our commit): init is never sent twice.
    sent_init = (
        PublishAttempt.objects.filter(
            post=post, attempt_number=max(1, post.publish_attempts), kind=AttemptKind.INIT
        )
        .exclude(error_code__in=NOT_SENT_CODES)
        .exclude(http_status=429)  # refused by TikTok's rate limit: nothing was created
        .order_by("-started_at")
        .first()
    )
    if sent_init is not None:
        _settle_sent_init(post, sent_init)
        return
    _prepare_and_init(post, client, held)


def _settle_sent_init(post: Post, attempt: PublishAttempt) -> None:
    """Finish a post whose init was already sent, from what the attempt recorded of TikTok's answer,
    exactly as the run that sent it would have (see `_init_or_prepare_failed`)."""
    status = attempt.http_status or 0
    answered = attempt.outcome in (
        AttemptOutcome.FINAL,
        AttemptOutcome.NEEDS_REAUTH,
        AttemptOutcome.RETRYABLE,
    )
    if not answered or status >= 500:
        _needs_attention(post, UNKNOWN_OUTCOME, attempt.error_code or "init_outcome_unknown")
        return
    kinds: dict[str, ErrorKind] = {
        AttemptOutcome.FINAL: ErrorKind.FINAL,
        AttemptOutcome.NEEDS_REAUTH: ErrorKind.REAUTH,
        AttemptOutcome.RETRYABLE: ErrorKind.RETRYABLE,
    }
    kind = kinds[attempt.outcome]
    _fail(post, _init_refused_message(kind, attempt.error_code, attempt.error_message), attempt.error_code)


def _init_refused_message(kind: ErrorKind, code: str, detail: str = "") -> str:
    """Why a post failed when TikTok answered its init with a refusal (nothing was created)."""
    if kind == ErrorKind.FINAL:
        return human_message(code, detail)
    if kind == ErrorKind.REAUTH:
        return f"{human_message(code, detail)} Nothing was created at TikTok; you can retry the post."
    # A retryable answer ("slow down", "try later") is not retried for an init: a person does it.
    return (
        f"TikTok turned the post down for now ({code}). Nothing was created at TikTok; "
        "you can retry the post."
    )


def _prepare_and_init(post: Post, client: TikTokClient, held: Held) -> None:
    agency = Agency.objects.filter(schema_name=connection.schema_name).first()
    if agency is None or agency.status != AgencyStatus.ACTIVE:
        _fail(
            post,
            "The agency is suspended, so nothing is published. Contact Postline support.",
            "agency_suspended",
        )
        return
    if refusal := agency.unverified_refusal:
        _fail(post, refusal, "agency_email_unverified")
        return
    account = post.account
    if account.is_deleted or account.status != AccountStatus.ACTIVE:
        reason = account.status_reason or "The TikTok account is disconnected."
        _fail(post, f"{reason} Reconnect {account} and retry the post.", f"account_{account.status}")
        return
    media: PostMedia | None = None
    photos: list[PostMedia] = []
    if post.media_type == MediaType.PHOTO:
        photos = post_photos(post)
        problem = photos_problem(photos) or ("" if media_base_url() else NO_MEDIA_DOMAIN)
        if problem:
            _fail(
                post, f"TikTok would refuse the photos, so nothing was sent. {problem}", "photo_check_failed"
            )
            return
    else:
        media = PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()
        if media is None:
            _fail(post, "The post has no video.", "no_video")
            return
        problem = video_problem(media_facts(media_probe_if_needed(media=media)))
        if problem:
            # Checked when it was scheduled too; a video from before those checks is caught here.
            _fail(
                post, f"TikTok would refuse the video, so nothing was sent. {problem}", "video_check_failed"
            )
            return
    if refusal := publish_refusal(post):
        # Fail closed: what would go out is not what was approved.
        _fail(post, refusal, "approval_changed")
        return
    limit = posting_limit_for(account, now=db_now())
    if limit is not None:
        # TikTok refused this account (or the whole app) lately: no call until the recheck.
        _fail(post, f"{limit.sentence} Nothing was sent; retry the post then.", limit.code)
        return
    try:
        creator = _with_token(
            post,
            client,
            lambda t: account_creator_info(account=post.account, access_token=t, client=client),
            AttemptKind.CREATOR_INFO,
        )
        posting_limit_lift(account=account)  # creator_info answers a banned or capped creator with the code
        _still_working(held)
        refusal = _creator_refusal(post, media, creator)
        if refusal:
            _fail(post, refusal, "creator_check_failed")
            return
        if media is None:
            init_call = _photo_init_call(post, creator, photos, client)
        else:
            init_call = _init_call(post, creator, chunk_plan(media.size_bytes).source_info(), client)
        # creator_info just proved the token good: init is called once, with no refresh-and-retry.
        token = account_access_token(account=post.account, client=client)
        answer: dict[str, Any] = {}

        def keep_publish_id() -> None:
            # The one fact that must never be lost: committed with the attempt's success,
            # before the upload starts.
            Post.objects.filter(pk=post.pk).update(
                publish_id=answer["init"].publish_id,
                upload_url=answer["init"].upload_url,
                updated_at=ClockTimestamp(),
            )

        with _attempt(post, AttemptKind.INIT, on_success=keep_publish_id, client=client):
            answer["init"] = init_call(token)
        result = answer["init"]
        posting_limit_lift(account=account, app_wide=True)
        _still_working(held)
        if post.scheduled_at is not None:
            publish_lateness_observe((db_now() - post.scheduled_at).total_seconds())
    except AccountNeedsReauth as exc:
        _fail(post, f"{exc.reason}", "needs_reauth")
        return
    except RateLimited as exc:
        _retry_later(post, exc)
        return
    except TikTokError as exc:
        now = db_now()  # the recheck time is a due time: on the database's clock
        if posting_limit_record(account=account, code=exc.code, now=now):
            limit = posting_limit_for(account, now=now)
            if limit is not None and not exc.maybe_applied:
                _fail(post, f"{limit.sentence} Nothing was created at TikTok.", exc.code)
                return
        _init_or_prepare_failed(post, exc)
        return
    post.publish_id, post.upload_url = result.publish_id, result.upload_url
    if media is None:
        _processing(post, "TikTok is downloading and processing the photos; this can take a few minutes.")
    else:
        _upload(post, client, held)


def _init_call(
    post: Post, creator: CreatorInfo, source_info: dict[str, Any], client: TikTokClient
) -> Callable[[Secret], Any]:
    if post.mode == PublishMode.INBOX:
        return lambda t: client.init_inbox(access_token=t, source_info=source_info)
    post_info = {
        "privacy_level": post.privacy_level,
        "title": post.caption,
        "disable_comment": not post.allow_comment or creator.comment_disabled,
        "disable_duet": not post.allow_duet or creator.duet_disabled,
        "disable_stitch": not post.allow_stitch or creator.stitch_disabled,
        "brand_content_toggle": post.brand_content,
        "brand_organic_toggle": post.brand_organic,
        "is_aigc": post.is_aigc,
    }
    if post.video_cover_timestamp_ms is not None:
        post_info["video_cover_timestamp_ms"] = post.video_cover_timestamp_ms
    return lambda t: client.init_direct_post(access_token=t, post_info=post_info, source_info=source_info)


def _photo_init_call(
    post: Post, creator: CreatorInfo, photos: list[PostMedia], client: TikTokClient
) -> Callable[[Secret], Any]:
    """content/init for a photo post: TikTok pulls each photo from its signed URL on our media
    address (apps.posts.photos), in carousel order."""
    post_info: dict[str, Any] = {
        "title": post.caption,
        "description": post.description,
        "disable_comment": not post.allow_comment or creator.comment_disabled,
        "auto_add_music": post.auto_add_music,
        "brand_content_toggle": post.brand_content,
        "brand_organic_toggle": post.brand_organic,
    }
    inbox = post.mode == PublishMode.INBOX
    if not inbox:
        post_info["privacy_level"] = post.privacy_level
    urls = [photo_url(schema_name=connection.schema_name, media=photo) for photo in photos]
    cover = min(post.photo_cover_index, len(urls) - 1)
    return lambda t: client.init_photo(
        access_token=t, post_info=post_info, photo_urls=urls, cover_index=cover, inbox=inbox
    )


def _creator_refusal(post: Post, media: PostMedia | None, creator: CreatorInfo) -> str:
    if post.mode == PublishMode.DIRECT and post.privacy_level not in creator.privacy_level_options:
        return (
            f"{post.account} no longer offers the privacy level “{post.get_privacy_level_display()}”. "
            "Choose one of its current options and retry."
        )
    max_seconds = creator.max_video_post_duration_sec
    if (
        media is not None
        and max_seconds
        and media.duration_seconds is not None
        and media.duration_seconds > max_seconds
    ):
        seconds = f"{media.duration_seconds:.0f}"
        return f"The video lasts {seconds} s; {post.account} can post at most {max_seconds} s."
    return ""


def _init_or_prepare_failed(post: Post, exc: TikTokError) -> None:
    """A failure before or at init. Whatever happened at init, init is never called again
    automatically: at most one create-post call per post reaches TikTok. A call held back
    on our side (rate limit, rate limiter unreachable) never reached TikTok: it is retried."""
    if exc.code in NOT_SENT_CODES:
        _retry_later(post, exc)
        return
    if exc.endpoint in ("init", "inbox_init", "content_init"):
        if exc.http_status == 429 and not exc.maybe_applied:
            # TikTok's rate limit refused the call, so nothing was created: send it after the window.
            _retry_later(post, exc)
            return
        if exc.maybe_applied or (exc.http_status is not None and exc.http_status >= 500):
            # TikTok may have created the post: a person decides.
            _needs_attention(post, UNKNOWN_OUTCOME, exc.code)
        else:
            # Refused before anything was created (final, rate limit, authorisation).
            _fail(post, _init_refused_message(exc.kind, exc.code, exc.message), exc.code)
        return
    if exc.kind == ErrorKind.RETRYABLE:
        _retry_later(post, exc)
    else:
        _fail(post, exc.human_message(), exc.code)


# --- Upload ---


def _upload(post: Post, client: TikTokClient, held: Held) -> None:
    """Send the chunks TikTok has not received yet; on success hand the post to status checks."""
    media = PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()
    if media is None:
        _fail(post, "The post's video was removed during publishing.", "no_video")
        return
    plan = chunk_plan(media.size_bytes)
    offset = _uploaded_bytes(post, client) if _has_upload_attempts(post) else 0
    ranges = [r for r in plan.ranges() if r[0] >= offset]
    # Each chunk streams from a ranged read of the stored video straight into the PUT, a piece
    # at a time: the file is never downloaded and no chunk is ever whole in memory.
    storage = media_storage()
    for first, last in ranges:
        for tries in range(1, UPLOAD_TRIES_PER_CHUNK + 1):
            try:
                # Sent only while this run holds the lease (the keeper renews it meanwhile), and
                # closed when the PUT ends however it ends, so its pieces are freed at once.
                pieces = held.pieces(read_ahead(storage.iter_range(media.file.name, first, last)))
                with _attempt(post, AttemptKind.UPLOAD, client=client), contextlib.closing(pieces):
                    client.upload_chunk(
                        upload_url=post.upload_url,
                        data=pieces,
                        first=first,
                        last=last,
                        total=plan.video_size,
                        content_type=media.mime_type,
                    )
                _still_working(held)
                break
            except TikTokError as exc:
                if not exc.retryable:
                    _fail(post, exc.human_message(), exc.code)
                    return
                if tries == UPLOAD_TRIES_PER_CHUNK:
                    # Try again later from TikTok's progress (the job's lease brings it back).
                    with transaction.atomic():
                        job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_in=60)
                    return
                _still_working(held)
                time.sleep(min(2.0, 0.25 * 2**tries))
                # TikTok's progress: from its answer's Content-Range when it gave one.
                received = exc.received_bytes
                if received is None:
                    received = _uploaded_bytes(post, client)
                if received > last:
                    break  # TikTok had it after all
    _processing(post, "TikTok is processing the video; this can take a few minutes.")


def _processing(post: Post, message: str) -> None:
    """TikTok has what it needs: the post waits for its status checks."""
    with transaction.atomic():
        job_delete(post_id=post.pk, kind=JobKind.PUBLISH)
        job_set(post_id=post.pk, kind=JobKind.POLL, due_in=settings.PUBLISH_POLL_BACKOFF[0])
        _finish(post, PostStatus.PROCESSING, message=message, only_from=(PostStatus.PUBLISHING,))


def _has_upload_attempts(post: Post) -> bool:
    return PublishAttempt.objects.filter(post=post, kind=AttemptKind.UPLOAD).exists()


def _uploaded_bytes(post: Post, client: TikTokClient) -> int:
    try:
        status = _with_token(
            post,
            client,
            lambda t: client.publish_status(access_token=t, publish_id=post.publish_id),
            AttemptKind.STATUS,
        )
    except (TikTokError, AccountNeedsReauth):
        return 0
    return status.uploaded_bytes or 0


# --- Status ---


def post_poll_status(*, post_id: str, client: TikTokClient | None = None) -> None:
    """Ask TikTok how a processing post is doing; safe to run any number of times."""
    client = client or TikTokClient(max_wait=5.0)
    post = Post.objects.select_related("account").filter(pk=post_id).first()
    if (
        post is None
        or not post.publish_id
        or post.status not in (PostStatus.PROCESSING, PostStatus.PUBLISHED)
    ):
        job_delete(post_id=uuid.UUID(str(post_id)), kind=JobKind.POLL)
        return
    # Asking early is harmless (a status check changes nothing at TikTok): any message is served,
    # and the start of a dispatched one is counted (and its lease kept while TikTok answers); but
    # not while another worker is asking (a copy of the message, sent while the first waited).
    lease = _take(post, JobKind.POLL)
    if lease is None and job_held(post_id=post.pk, kind=JobKind.POLL):
        logger.info("Status check of post %s skipped: another worker is checking it", post_id)
        return
    with contextlib.nullcontext() if lease is None else lease_kept(lease):
        _poll_status(post, client)


def _poll_status(post: Post, client: TikTokClient) -> None:
    try:
        status = _with_token(
            post,
            client,
            lambda t: client.publish_status(access_token=t, publish_id=post.publish_id),
            AttemptKind.STATUS,
        )
    except AccountNeedsReauth as exc:
        if post.status == PostStatus.PUBLISHED:
            _stop_looking_for_public_id(post)
            return
        _needs_attention_unless_settled(
            post,
            f"{exc.reason} Until then we cannot learn whether TikTok published the post.",
            "needs_reauth",
        )
        return
    except TikTokError as exc:
        if exc.retryable:
            _poll_later(post)
        elif post.status == PostStatus.PUBLISHED:
            _stop_looking_for_public_id(post)
        else:
            _needs_attention_unless_settled(
                post, f"TikTok would not tell us the post's status: {exc.human_message()}", exc.code
            )
        return
    public_id = next((i for i in status.public_post_ids if len(i) == 19 and i.isdigit()), "")
    if status.status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX"):
        if post.status != PostStatus.PUBLISHED:
            _finish(
                post,
                PostStatus.PUBLISHED,
                only_from=(PostStatus.PROCESSING,),
                published_at=ClockTimestamp(),
                published_post_id=public_id,
            )
        elif public_id:
            with transaction.atomic():
                Post.objects.filter(pk=post.pk).update(published_post_id=public_id)
                job_delete(post_id=post.pk, kind=JobKind.POLL)
        if not public_id and _gets_public_id(post):
            _poll_later(post)  # the public id comes after moderation, sometimes hours later
        else:
            job_delete(post_id=post.pk, kind=JobKind.POLL)
    elif post.status == PostStatus.PUBLISHED:
        # TikTok said it was published; nothing it says later undoes that.
        _stop_looking_for_public_id(post)
    elif status.status == "FAILED":
        reason = status.fail_reason or "unknown"
        hint = " You can retry it." if fail_reason_kind(reason) == ErrorKind.RETRYABLE else ""
        _finish(
            post,
            PostStatus.FAILED,
            only_from=(PostStatus.PROCESSING,),
            code=reason,
            message=f"TikTok could not publish the video: {human_message(reason)}{hint}",
        )
    else:
        _poll_later(post)


def _gets_public_id(post: Post) -> bool:
    """Only direct posts everyone may see get a public id from TikTok (after moderation)."""
    return post.mode == PublishMode.DIRECT and post.privacy_level == PrivacyLevel.PUBLIC_TO_EVERYONE


def _stop_looking_for_public_id(post: Post) -> None:
    """A published post whose check failed: it stays published; we only stop asking for its id."""
    with transaction.atomic():
        job_delete(post_id=post.pk, kind=JobKind.POLL)
    logger.info("Post %s stays published; stopped asking TikTok for its public id", post.pk)


def _needs_attention_unless_settled(post: Post, message: str, code: str) -> None:
    """A processing post whose outcome we cannot learn goes to a person, unless a webhook
    settled it meanwhile (then its status stands)."""
    _finish(post, PostStatus.NEEDS_ATTENTION, only_from=(PostStatus.PROCESSING,), code=code, message=message)


def _poll_later(post: Post) -> None:
    polls = PublishAttempt.objects.filter(
        post=post, kind=AttemptKind.STATUS, attempt_number=post.publish_attempts
    )
    first = polls.order_by("started_at").values_list("started_at", flat=True).first()
    if first is not None and db_now() - first > POLL_GIVE_UP_AFTER:
        if post.status == PostStatus.PUBLISHED:
            job_delete(post_id=post.pk, kind=JobKind.POLL)  # published; TikTok never made it public
        else:
            _needs_attention_unless_settled(
                post, "TikTok has been processing this post for three days.", "processing_timeout"
            )
        return
    delay = settings.PUBLISH_POLL_BACKOFF[min(polls.count(), len(settings.PUBLISH_POLL_BACKOFF) - 1)]
    with transaction.atomic():
        job_set(post_id=post.pk, kind=JobKind.POLL, due_in=delay)


# --- Reading ---


def account_posts_last_24h(*, account_id: Any) -> int:
    """Posts this account sent to TikTok in the last 24 hours (for the daily-cap warning)."""
    since = db_now() - dt.timedelta(hours=24)
    return (
        PublishAttempt.objects.filter(
            post__account_id=account_id,
            kind=AttemptKind.INIT,
            outcome=AttemptOutcome.OK,
            started_at__gte=since,
        )
        .values("post_id")
        .distinct()
        .count()
    )


def next_attempt_number(post: Post) -> int:
    return (post.attempts.aggregate(n=Max("attempt_number"))["n"] or 0) + 1


def posts_fail_missed(*, late_by_seconds: float, message: str, code: str) -> int:
    """Fail this agency's scheduled posts whose time passed more than `late_by_seconds` ago (on the
    database's clock) without a worker taking them: the agency was not active then, nothing was sent
    to TikTok, and a post that late is rarely still wanted. Returns how many were failed.

    Locks each job row, then its post (the dispatcher's order)."""
    failed = 0
    with transaction.atomic():
        jobs = DueJob.objects.select_for_update().filter(
            schema_name=connection.schema_name, kind=JobKind.PUBLISH, due_at__lt=db_in(-late_by_seconds)
        )
        for job in jobs.order_by("due_at"):
            post = (
                Post.objects.select_for_update().filter(pk=job.post_id, status=PostStatus.SCHEDULED).first()
            )
            if post is not None:
                _fail(post, message, code)
                failed += 1
    return failed
