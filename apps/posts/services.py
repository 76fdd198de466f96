"""Writes on posts: composing (create, edit, upload the video), scheduling, cancelling,
retrying, resolving posts that need attention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import IO, Any, cast

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.permissions import Perm, needs_approval, user_may
from apps.audit.models import AuditLog
from apps.audit.services import audit_record
from apps.common.expressions import db_now, utf16_length
from apps.common.outbox import notification_emit
from apps.media.models import LibraryKind, MediaItem
from apps.media.services import StorageFull, library_item_add, names_unused
from apps.media.storage import RangeReader, media_storage
from apps.media.uploads import StoredUpload
from apps.posts.media import MediaError, VideoFacts, inspect_video, probe_video, video_problem
from apps.posts.models import (
    CANCELLABLE_STATUSES,
    CAPTION_MAX_UTF16,
    PHOTO_DESCRIPTION_MAX_UTF16,
    PHOTO_TITLE_MAX_UTF16,
    SCHEDULABLE_STATUSES,
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
    ReviewOutcome,
)
from apps.posts.photos import (
    NO_MEDIA_DOMAIN,
    NOT_A_PHOTO,
    media_base_url,
    photo_problem,
    photos_problem,
    probe_photo,
)
from apps.posts.selectors import approval_is_current, is_own_work, post_content_hash
from apps.tiktok.client import CreatorInfo, TikTokClient
from tenants.models import current_agency

logger = logging.getLogger(__name__)

# A person may edit these in the composer: no worker holds them.
EDITABLE_STATUSES = frozenset(
    {PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED, PostStatus.FAILED}
)
REVIEW_COMMENT_MAX = 1000
# A post submitted for approval must leave its reviewers at least this long to decide.
APPROVAL_LEAD_TIME = dt.timedelta(minutes=5)
OWN_WORK = "You wrote or changed this post, so someone else with approval rights approves it."

# TikTok's own words for its audit (TIKTOK_API.md, "What TikTok's audit requires").
DISCLOSURE_NEEDS_A_BRAND = "You need to indicate if your content promotes yourself, a third party, or both."
BRANDED_CONTENT_NOT_PRIVATE = "Branded content visibility cannot be set to private."


def publish_now_unavailable(account: TikTokAccount) -> str:
    """What Publish now says on an account whose posts the person sends for approval."""
    return (
        f"Publish now is not available for {account}: its posts are approved before they go out. "
        f"Choose a time at least {APPROVAL_LEAD_TIME.seconds // 60} minutes from now and press "
        "Schedule to send it for approval."
    )


def publish_now_refusal(*, by: Any, account: TikTokAccount) -> str:
    """Why `by` may not publish a post on `account` at once ("" when they may): their posts on it
    wait for a reviewer, who needs the post ahead of its time."""
    return publish_now_unavailable(account) if needs_approval(by, account) else ""


class PostStateError(Exception):
    """The post's current status does not allow the change; the message says why."""


def _agency_may_publish() -> None:
    """Scheduling and publishing wait until the agency's owner confirmed their email address
    (apps.web.email_verification): PostStateError saying so."""
    if refusal := current_agency().unverified_refusal:
        raise PostStateError(refusal)


class PostConflictError(Exception):
    """Someone saved the post after the editor opened it: saving now would silently undo their
    work. Says who, when and what they changed (from the post's audit entries)."""

    def __init__(self, *, by: str, at: dt.datetime, changed: list[str], version: dt.datetime) -> None:
        self.by, self.at, self.changed, self.version = by, at, changed, version
        super().__init__(f"{by} saved this post at {at.isoformat()} ({', '.join(changed) or 'its state'})")


# How the audit entries name what changed, in the words of the composer.
_CHANGED_LABELS = {
    "account": "account",
    "caption": "caption",
    "description": "description",
    "privacy_level": "privacy",
    "allow_comment": "comments",
    "allow_duet": "duet",
    "allow_stitch": "stitch",
    "commercial_disclosure": "disclosure",
    "brand_organic": "disclosure",
    "brand_content": "disclosure",
    "is_aigc": "AI-generated label",
    "mode": "where it goes",
    "media_type": "video or photos",
    "auto_add_music": "music",
    "photo_cover_index": "cover",
    "photos": "photos",
    "video": "video",
    "status": "status",
    "scheduled_at": "time",
}


def _conflict(post: Post, seen: dt.datetime) -> PostConflictError:
    """What happened to `post` since the version `seen`."""
    entries = list(
        AuditLog.objects.filter(
            object_type="posts.post", object_id=str(post.pk), created_at__gte=seen
        ).order_by("created_at")
    )
    changed: list[str] = []
    for entry in entries:
        for field, value in (entry.changes or {}).items():
            if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
                continue  # recorded, but the same as before (a post scheduled again at its time)
            label = _CHANGED_LABELS.get(field)
            if label and label not in changed:
                changed.append(label)
    last = entries[-1] if entries else None
    by = (last.actor_email if last else "") or (post.updated_by.email if post.updated_by else "") or "Someone"
    return PostConflictError(by=by, at=post.updated_at, changed=changed, version=post.updated_at)


class PostValidationError(Exception):
    """What a person entered breaks a rule; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


# --- Composing ---


@dataclass(frozen=True)
class PostContent:
    """What the composer sets on a post (everything but its video and its time)."""

    account: TikTokAccount
    caption: str = ""
    privacy_level: str = ""
    allow_comment: bool = False
    allow_duet: bool = False
    allow_stitch: bool = False
    commercial_disclosure: bool = False
    brand_organic: bool = False
    brand_content: bool = False
    is_aigc: bool = False
    mode: str = PublishMode.DIRECT
    # Photo posts (the caption is then their title).
    media_type: str = MediaType.VIDEO
    description: str = ""
    auto_add_music: bool = False
    photo_cover_index: int = 0

    def normalized(self) -> PostContent:
        """Brand choices only count while disclosure is on; TikTok counts newlines as one unit."""
        caption = self.caption.replace("\r\n", "\n")
        changes: dict[str, Any] = {"caption": caption, "description": self.description.replace("\r\n", "\n")}
        if self.media_type == MediaType.PHOTO:
            changes.update(allow_duet=False, allow_stitch=False)  # photos have neither
        if not self.commercial_disclosure:
            changes.update(brand_organic=False, brand_content=False)
        return dataclasses.replace(self, **changes)


CONTENT_FIELDS = tuple(f.name for f in dataclasses.fields(PostContent) if f.name != "account")


@dataclass(frozen=True)
class CreatorCheck:
    """What TikTok said about posting to an account right now (creator_info), or why it could not."""

    account: TikTokAccount
    info: CreatorInfo | None = None
    # The creator cannot post now (banned, daily cap, authorisation gone): why, for a person.
    blocked: str = ""
    # TikTok could not be asked (rate limit, network, outage): try again shortly.
    unavailable: str = ""

    @property
    def can_post(self) -> bool:
        return self.info is not None and not self.blocked and not self.unavailable

    @property
    def nickname(self) -> str:
        if self.info is not None and self.info.nickname:
            return self.info.nickname
        return self.account.display_name or str(self.account)

    @property
    def privacy_choices(self) -> list[tuple[str, str]]:
        """Exactly the creator's options, in TikTok's order, with our labels."""
        if self.info is None:
            return []
        labels = dict(PrivacyLevel.choices)
        return [(value, str(labels.get(value, value))) for value in self.info.privacy_level_options]


def creator_check(*, account: TikTokAccount, client: TikTokClient | None = None) -> CreatorCheck:
    """Ask TikTok (creator_info) whether and how the account can post now.

    Never raises for TikTok's answers: a refusal (banned, daily cap, authorisation gone) is
    `blocked`, a failure to get an answer is `unavailable`. An expired access token is
    refreshed once, as the publishing pipeline does.
    """
    from apps.accounts.services import (
        AccountNeedsReauth,
        account_access_token,
        account_creator_info,
        account_refresh_tokens,
    )
    from apps.tiktok.errors import RateLimited, TikTokError

    reconnect = f"{account} must be reconnected before it can post. Reconnect it on the Accounts page."
    if account.status != AccountStatus.ACTIVE:
        reason = account.status_reason or f"{account} is {account.get_status_display().lower()}."
        return CreatorCheck(account, blocked=f"{reason} {reconnect}")
    client = client or TikTokClient(max_wait=2.0)
    try:
        token = account_access_token(account=account, client=client)
        try:
            info = account_creator_info(account=account, access_token=token, client=client)
        except TikTokError as exc:
            if exc.code != "access_token_invalid":
                raise
            refreshed = account_refresh_tokens(account_id=account.pk, force=True, client=client)
            info = account_creator_info(account=account, access_token=refreshed.access_token, client=client)
    except AccountNeedsReauth as exc:
        return CreatorCheck(account, blocked=f"{exc.reason} {reconnect}")
    except TikTokError as exc:
        if exc.needs_reauth:
            return CreatorCheck(account, blocked=f"{exc.human_message()} {reconnect}")
        if isinstance(exc, RateLimited):
            return CreatorCheck(account, unavailable=exc.human_message())
        if exc.retryable:
            return CreatorCheck(
                account,
                unavailable="TikTok did not answer our question about this account "
                f"({exc.human_message()}) Try again in a moment.",
            )
        return CreatorCheck(account, blocked=f"{account} cannot post right now: {exc.human_message()}")
    return CreatorCheck(account, info=info)


def post_content_errors(
    content: PostContent,
    *,
    media: PostMedia | None,
    creator: CreatorCheck | None,
    publishing: bool,
    photos: list[PostMedia] | None = None,
) -> dict[str, str]:
    """Every rule the composer enforces (the database's constraints and TikTok's audit rules),
    as field → message. `publishing` is True for Schedule and Publish now, False for a draft.
    Without `creator` (TikTok not asked), the creator's own limits are not checked."""
    errors: dict[str, str] = {}
    content = content.normalized()
    length = utf16_length(content.caption)
    if content.media_type == MediaType.PHOTO:
        errors.update(_photo_content_errors(content, photos=photos or [], publishing=publishing))
    elif length > CAPTION_MAX_UTF16:
        errors["caption"] = (
            f"The caption is {length:,} characters long as TikTok counts them (emoji count as two); "
            f"TikTok allows at most {CAPTION_MAX_UTF16:,}."
        )
    info = creator.info if creator is not None else None
    if content.privacy_level and content.privacy_level not in PrivacyLevel.values:
        errors["privacy_level"] = "Choose one of the account's privacy options."
    elif (
        content.privacy_level and info is not None and content.privacy_level not in info.privacy_level_options
    ):
        errors["privacy_level"] = (
            f"{creator.nickname if creator else 'This account'} does not offer "
            f"“{PrivacyLevel(content.privacy_level).label}”. Choose one of its options."
        )
    elif publishing and not content.privacy_level:
        errors["privacy_level"] = "Choose who can see this post."
    if content.commercial_disclosure and not (content.brand_organic or content.brand_content):
        errors["commercial_disclosure"] = DISCLOSURE_NEEDS_A_BRAND
    if content.brand_content and content.privacy_level == PrivacyLevel.SELF_ONLY:
        errors["privacy_level"] = BRANDED_CONTENT_NOT_PRIVATE
    if info is not None:
        for field, disabled, what in (
            ("allow_comment", info.comment_disabled, "Comments are"),
            ("allow_duet", info.duet_disabled, "Duet is"),
            ("allow_stitch", info.stitch_disabled, "Stitch is"),
        ):
            if disabled and getattr(content, field):
                errors[field] = f"{what} turned off for this account on TikTok."
    if content.mode not in PublishMode.values:
        errors["mode"] = "Choose how to send the video to TikTok."
    if publishing and content.media_type == MediaType.VIDEO:
        if media is None:
            errors["video"] = "Upload the video to post."
        else:
            max_seconds = info.max_video_post_duration_sec if info is not None else None
            name = creator.nickname if creator is not None else "this account"
            problem = video_problem(media_facts(media), max_duration_seconds=max_seconds, account_name=name)
            if problem:
                errors["video"] = problem
    if publishing and creator is not None and not creator.can_post:
        errors["account"] = (
            creator.blocked or creator.unavailable or "TikTok was not asked about this account."
        )
    return errors


def draft_blockers(errors: dict[str, str], content: PostContent) -> dict[str, str]:
    """Of `post_content_errors(..., publishing=False)`, those that stop even a draft from being
    saved: a value that is none of the choices (the database refuses it in any status), or a
    cover that is none of the photos. The others (a caption over the limit, a disclosure that
    names no brand, ...) a draft may carry until it is scheduled."""
    return {
        field: message
        for field, message in errors.items()
        if field in ("mode", "photos")
        or (field == "privacy_level" and content.privacy_level not in ("", *PrivacyLevel.values))
    }


def post_draft_problems(post: Post) -> list[str]:
    """What must change in a saved draft before it can be scheduled, as the composer would say it
    (empty when nothing does: what is merely missing, like a video, the composer asks for then)."""
    content = PostContent(account=post.account, **{field: getattr(post, field) for field in CONTENT_FIELDS})
    photos = post_photos(post) if post.media_type == MediaType.PHOTO else []
    errors = post_content_errors(content, media=None, creator=None, publishing=False, photos=photos)
    return list(errors.values())


def _photo_content_errors(
    content: PostContent, *, photos: list[PostMedia], publishing: bool
) -> dict[str, str]:
    errors: dict[str, str] = {}
    title = utf16_length(content.caption)
    if title > PHOTO_TITLE_MAX_UTF16:
        errors["caption"] = (
            f"The title is {title:,} characters long as TikTok counts them (emoji count as two); "
            f"a photo post's title is at most {PHOTO_TITLE_MAX_UTF16}. Put the rest in the description."
        )
    described = utf16_length(content.description)
    if described > PHOTO_DESCRIPTION_MAX_UTF16:
        errors["description"] = (
            f"The description is {described:,} characters long as TikTok counts them; "
            f"TikTok allows at most {PHOTO_DESCRIPTION_MAX_UTF16:,}."
        )
    if photos and not 0 <= content.photo_cover_index < len(photos):
        errors["photos"] = "Choose one of the photos as the cover."
    if publishing:
        problem = photos_problem(photos) or (NO_MEDIA_DOMAIN if not media_base_url() else "")
        if problem:
            errors["photos"] = problem
    return errors


def media_facts(media: PostMedia) -> VideoFacts:
    """What TikTok checks about a stored video, from its row (no file is read)."""
    return VideoFacts(
        mime_type=media.mime_type,
        size_bytes=media.size_bytes,
        duration_seconds=media.duration_seconds,
        width=media.width,
        height=media.height,
        frame_rate=media.frame_rate,
        codec=media.video_codec,
    )


def media_probe_if_needed(*, media: PostMedia) -> PostMedia:
    """Read codec and frame rate of a video uploaded before we kept them (a few ranged reads of
    the stored object) and store them, once. A video probed already is returned as it is."""
    if media.kind != MediaKind.VIDEO or media.probed_at is not None or not media.file.name:
        return media
    storage = media_storage()
    name = str(media.file.name)
    try:
        if not storage.exists(name):
            return media  # nothing to read: checked on what is known
        reader = cast(IO[bytes], RangeReader(storage, name, media.size_bytes))
        facts = probe_video(reader, mime_type=media.mime_type, size=media.size_bytes)
    except Exception:  # storage unreachable: checked on what is known, probed next time
        logger.warning("Could not probe stored video %s", media.pk, exc_info=True)
        return media
    media.frame_rate, media.video_codec = facts.frame_rate, facts.codec
    media.probed_at = timezone.now()
    PostMedia.objects.filter(pk=media.pk).update(
        frame_rate=media.frame_rate, video_codec=media.video_codec, probed_at=media.probed_at
    )
    return media


def media_upload(
    *, file: StoredUpload, by: Any, max_duration_seconds: int | None = None, request: Any = None
) -> PostMedia:
    """Check a video already streamed to the agency's storage (type by content, size, duration,
    frame size, read from its headers by ranged reads) and record it, not yet attached to a post.
    A refused video is deleted from storage. Raises apps.posts.media.MediaError."""
    try:
        info = inspect_video(file, size=file.size or 0, max_duration_seconds=max_duration_seconds)
    except MediaError:
        file.discard()
        raise
    media = PostMedia(
        kind=MediaKind.VIDEO,
        original_name=(file.name or "")[:255],
        size_bytes=info.size_bytes,
        mime_type=info.mime_type,
        sha256=file.sha256,
        duration_seconds=info.duration_seconds,
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate,
        video_codec=info.codec,
        probed_at=timezone.now(),
        created_by=by,
        updated_by=by,
    )
    media.file.name = file.storage_name
    try:
        with transaction.atomic():
            media.library_item = _library_add(media, by=by, request=request)
            media.save()
            audit_record(
                action="media.uploaded",
                actor=by,
                obj=media,
                request=request,
                changes={
                    "size_bytes": media.size_bytes,
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "duration_seconds": str(media.duration_seconds),
                    "frame": f"{media.width}x{media.height}",
                    "frame_rate": str(media.frame_rate) if media.frame_rate is not None else None,
                    "codec": media.video_codec,
                },
            )
    except StorageFull as exc:
        file.discard()
        raise MediaError(str(exc)) from None
    except Exception:
        file.discard()
        raise
    return media


def photo_upload(*, file: StoredUpload, by: Any, request: Any = None, which: str = "The photo") -> PostMedia:
    """Check a photo already streamed to the agency's storage (JPEG or WebP by content, at most
    20 MB, at most 1080 px on its short side, read from its header) and record it, not yet in a
    post. A refused photo is deleted from storage. Raises apps.posts.media.MediaError, its message
    naming the photo as `which` ("Photo 4 (loaf.jpg)")."""
    size = file.size or 0
    facts = probe_photo(file, size=size) if size > 0 else None
    problem = f"{which} is empty. Choose it again." if size <= 0 else photo_problem(facts, which=which)
    if problem or facts is None:
        file.discard()
        raise MediaError(problem or NOT_A_PHOTO)
    media = PostMedia(
        kind=MediaKind.PHOTO,
        original_name=(file.name or "")[:255],
        size_bytes=facts.size_bytes,
        mime_type=facts.mime_type,
        sha256=file.sha256,
        width=facts.width,
        height=facts.height,
        probed_at=timezone.now(),
        created_by=by,
        updated_by=by,
    )
    media.file.name = file.storage_name
    try:
        with transaction.atomic():
            media.library_item = _library_add(media, by=by, request=request)
            media.save()
            audit_record(
                action="media.uploaded",
                actor=by,
                obj=media,
                request=request,
                changes={
                    "kind": MediaKind.PHOTO,
                    "size_bytes": media.size_bytes,
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "frame": f"{media.width}x{media.height}",
                },
            )
    except StorageFull as exc:
        file.discard()
        raise MediaError(str(exc)) from None
    except Exception:
        file.discard()
        raise
    return media


def _attach_photos(post: Post, photos: list[PostMedia], by: Any) -> bool:
    """Make `photos`, in this order, the post's carousel; returns whether anything changed."""
    ids = [photo.pk for photo in photos]
    locked = {m.pk: m for m in PostMedia.objects.select_for_update().filter(pk__in=ids, kind=MediaKind.PHOTO)}
    current = list(
        PostMedia.objects.filter(post=post, kind=MediaKind.PHOTO)
        .order_by("position")
        .values_list("pk", flat=True)
    )
    if current == ids:
        return False
    for pk in ids:
        media = locked.get(pk)
        if media is None or (media.post_id is not None and media.post_id != post.pk):
            raise PostValidationError({"photos": "A photo belongs to another post. Upload it again."})
    removed = PostMedia.objects.filter(post=post, kind=MediaKind.PHOTO).exclude(pk__in=ids)
    names = [name for name in removed.values_list("file", flat=True) if name]
    removed.delete(by=by)
    transaction.on_commit(lambda: _remove_files(names))
    # Places are unique per post: clear them, then set them in the new order.
    PostMedia.objects.filter(pk__in=ids).update(position=None)
    for position, pk in enumerate(ids):
        PostMedia.objects.filter(pk=pk).update(
            post=post, position=position, updated_by=by, updated_at=timezone.now()
        )
    Post.objects.filter(pk=post.pk).update(photo_count=len(ids))
    post.photo_count = len(ids)
    return True


def post_photos(post: Post) -> list[PostMedia]:
    """A photo post's photos, in carousel order."""
    return list(PostMedia.objects.filter(post=post, kind=MediaKind.PHOTO).order_by("position"))


def _remove_files(names: list[str]) -> None:
    """Delete the stored objects of media that are gone (after the deletion committed), but not
    those the library keeps: the item and the other posts that reuse it still need them."""
    storage = media_storage()
    for name in names_unused(names):
        storage.delete(name)


def _library_add(media: PostMedia, *, by: Any, request: Any) -> MediaItem:
    """The library item of a new upload, on the same stored object (StorageFull past the plan)."""
    kind = LibraryKind.IMAGE if media.kind == MediaKind.PHOTO else LibraryKind.VIDEO
    facts = {
        "size_bytes": media.size_bytes,
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "duration_seconds": media.duration_seconds,
        "width": media.width,
        "height": media.height,
        "frame_rate": media.frame_rate,
        "video_codec": media.video_codec,
        "probed_at": media.probed_at,
    }
    return library_item_add(
        kind=kind,
        name=media.original_name or "Untitled",
        file_name=str(media.file.name),
        facts=facts,
        by=by,
        request=request,
    )


def media_from_library(*, item: MediaItem, by: Any, save: bool = True) -> PostMedia:
    """A media row, not yet in a post, for reusing a library item: it names the item's stored
    object (nothing is copied or stored again). `save=False`: unsaved, to check a post with it."""
    media = PostMedia(
        kind=MediaKind.PHOTO if item.kind == LibraryKind.IMAGE else MediaKind.VIDEO,
        original_name=item.name[:255],
        library_item=item,
        created_by=by,
        updated_by=by,
        **item.facts(),
    )
    media.file.name = str(item.file.name)
    if save:
        media.save()
    return media


def _attach_video(post: Post, media: PostMedia, by: Any) -> str | None:
    """Make `media` the post's video; returns the id of the video it replaced, if any."""
    media = PostMedia.objects.select_for_update().get(pk=media.pk)
    if media.post_id == post.pk:
        return None
    if media.post_id is not None:
        raise PostValidationError({"video": "This video belongs to another post. Upload it again."})
    replaced = PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).exclude(pk=media.pk)
    previous = replaced.values_list("pk", flat=True).first()
    names = [name for name in replaced.values_list("file", flat=True) if name]
    replaced.delete(by=by)
    # The replaced video's bytes go too; its row stays for the audit trail.
    transaction.on_commit(lambda: _remove_files(names))
    media.post = post
    media.updated_by = by
    media.save(update_fields=["post", "updated_by", "updated_at"])
    return str(previous) if previous else None


def _audit_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value


def schedule_errors(
    *, by: Any, account: TikTokAccount, scheduled_at: dt.datetime | None, publish_now: bool = False
) -> dict[str, str]:
    """What refuses scheduling a post on `account` at `scheduled_at` for `by`, besides its
    content: Publish now for someone whose posts wait for approval, no time, or too little time
    left for a reviewer (as field → message; the bulk import asks it too)."""
    if publish_now and (refusal := publish_now_refusal(by=by, account=account)):
        return {"action": refusal}
    if scheduled_at is None:
        return {"scheduled_at": "Choose the date and time to publish."}
    if scheduled_at < timezone.now() + APPROVAL_LEAD_TIME and needs_approval(by, account):
        return {
            "scheduled_at": "Posts for this account are approved before they go out: choose a time at least "
            f"{APPROVAL_LEAD_TIME.seconds // 60} minutes from now, then submit it for approval."
        }
    return {}


def post_save(
    *,
    post: Post | None,
    content: PostContent,
    media: PostMedia | None,
    by: Any,
    scheduled_at: dt.datetime | None = None,
    time_zone: str = "",
    schedule: bool = False,
    publish_now: bool = False,
    creator: CreatorCheck | None = None,
    request: Any = None,
    photos: list[PostMedia] | None = None,
    seen: dt.datetime | None = None,
    keep_problems: bool = False,
) -> Post:
    """Create (`post=None`) or edit a post from the composer, all or nothing.

    `keep_problems` (the composer's "Save draft", never with `schedule`): content TikTok would
    refuse does not stop a draft from being saved as it is (see `draft_blockers`); the post's
    page lists it (`post_draft_problems`), and scheduling it is refused until it is fixed.

    `seen` is the post's `updated_at` when the editor opened it: if someone saved it since,
    PostConflictError (nothing saved) instead of overwriting their work. None: no check (the
    API's PATCH without a version).

    A photo post (`content.media_type` PHOTO) takes `photos`, in carousel order (None: keep the
    post's own).

    With `schedule`, the post is also scheduled at `scheduled_at`; `publish_now` (with
    `schedule`, `scheduled_at` now) says the person pressed Publish now, refused (as `action`) to
    someone whose posts wait for approval. Without `schedule`, it is (or goes back to being) a
    draft that remembers the time entered. A new `media` becomes the post's video. Raises
    PostValidationError (field → message) and PostStateError (a worker already took the post).
    """
    if schedule:
        _agency_may_publish()
    content = content.normalized()
    if media is None and post is not None:
        media = PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()
    if schedule and media is not None:
        media = media_probe_if_needed(media=media)
    if content.media_type == MediaType.PHOTO:
        media = None
        if photos is None:
            photos = post_photos(post) if post is not None else []
    errors = post_content_errors(content, media=media, creator=creator, publishing=schedule, photos=photos)
    if keep_problems and not schedule:
        errors = draft_blockers(errors, content)
    if schedule:
        errors.update(
            schedule_errors(
                by=by, account=content.account, scheduled_at=scheduled_at, publish_now=publish_now
            )
        )
    if errors:
        raise PostValidationError(errors)
    if scheduled_at is not None and scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    with transaction.atomic():
        if post is None:
            post = Post(status=PostStatus.DRAFT, created_by=by, updated_by=by, account=content.account)
            for field in CONTENT_FIELDS:
                setattr(post, field, getattr(content, field))
            if not schedule:
                post.scheduled_at, post.schedule_time_zone = scheduled_at, time_zone if scheduled_at else ""
            post.save()
            audit_record(
                action="post.created",
                actor=by,
                obj=post,
                request=request,
                changes={
                    "account": str(content.account.pk),
                    **{field: _audit_value(getattr(post, field)) for field in CONTENT_FIELDS},
                },
            )
        else:
            post = _locked(post)
            if post.status not in EDITABLE_STATUSES:
                raise PostStateError(
                    f"This post is {post.get_status_display().lower()} and can no longer be edited."
                )
            if seen is not None and seen != post.updated_at:
                raise _conflict(post, seen)
            changes: dict[str, Any] = {}
            if post.account_id != content.account.pk:
                changes["account"] = [str(post.account_id), str(content.account.pk)]
                post.account = content.account
            for field in CONTENT_FIELDS:
                old, new = getattr(post, field), getattr(content, field)
                if old != new:
                    changes[field] = [_audit_value(old), _audit_value(new)]
                    setattr(post, field, new)
            if post.status == PostStatus.FAILED or (
                post.status in (PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL) and not schedule
            ):
                # Back to a draft: a failed post's TikTok state belongs to the attempt that failed.
                from apps.publishing.jobs import job_delete

                changes["status"] = [post.status, PostStatus.DRAFT]
                if post.status == PostStatus.FAILED:
                    post.publish_id = post.upload_url = ""
                    post.last_error_code = post.last_error_message = ""
                post.status = PostStatus.DRAFT
                job_delete(post_id=post.pk)
            if not schedule and (post.scheduled_at, post.schedule_time_zone) != (scheduled_at, time_zone):
                post.scheduled_at = scheduled_at
                post.schedule_time_zone = time_zone if scheduled_at else ""
            post.updated_by = by
            post.save()
            if changes:
                audit_record(action="post.edited", actor=by, obj=post, request=request, changes=changes)
        if photos is not None and content.media_type == MediaType.PHOTO and _attach_photos(post, photos, by):
            audit_record(
                action="post.edited",
                actor=by,
                obj=post,
                request=request,
                changes={"photos": [str(photo.pk) for photo in photos]},
            )
        if media is not None:
            replaced = _attach_video(post, media, by)
            if replaced is not None:
                audit_record(
                    action="post.edited",
                    actor=by,
                    obj=post,
                    request=request,
                    changes={"video": [replaced, str(media.pk)]},
                )
        if post.review_outcome == ReviewOutcome.APPROVED and not approval_is_current(post):
            # Whoever changed it, and whatever they may do: what goes to TikTok is no longer what
            # the reviewer approved.
            _clear_review(post)
            post.save()
            audit_record(
                action="post.approval_cleared",
                actor=by,
                obj=post,
                request=request,
                changes={"review_outcome": [ReviewOutcome.APPROVED, ReviewOutcome.NONE]},
            )
        if schedule and scheduled_at is not None:
            post = post_schedule(
                post=post, scheduled_at=scheduled_at, time_zone=time_zone or "UTC", by=by, request=request
            )
    return post


# --- Status changes ---


def _locked(post: Post) -> Post:
    """Lock the post's job row, then the post (the dispatcher's order), and return the post."""
    from apps.publishing.jobs import job_lock

    job_lock(post_id=post.pk)
    return Post.objects.select_for_update().get(pk=post.pk)


def post_schedule(
    *,
    post: Post,
    scheduled_at: dt.datetime,
    time_zone: str,
    by: Any,
    request: Any = None,
    only_from: frozenset[str] = SCHEDULABLE_STATUSES,
) -> Post:
    """Schedule (or reschedule) a post. Refused in the past, and once a worker has claimed it.

    `only_from`: the statuses the caller moves posts from, checked on the locked row (moving a
    post on the calendar must not schedule a draft rejected a moment ago).
    On an account that requires approval, a person who may not schedule without it submits the
    post instead: it waits in `pending_approval` (with no publish job) until someone approves it,
    at least APPROVAL_LEAD_TIME ahead. Every new submission clears the previous decision: an
    approved post that is edited or moved goes back for approval."""
    from apps.publishing.jobs import job_delete, job_set
    from apps.publishing.models import JobKind

    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    _agency_may_publish()
    if scheduled_at < timezone.now() - dt.timedelta(seconds=5):
        raise PostStateError("That time has already passed. Choose a time in the future.")
    refusal = _video_refusal(post)
    if refusal:
        raise PostStateError(refusal)
    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in SCHEDULABLE_STATUSES or locked.status not in only_from:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()} and can no longer be rescheduled."
                if locked.status not in SCHEDULABLE_STATUSES
                else f"This post is {locked.get_status_display().lower()}: open it to schedule it."
            )
        if not locked.privacy_level:
            raise PostStateError("Choose who can see the post before scheduling it.")
        if problems := post_draft_problems(locked):
            raise PostStateError(f"Fix this before scheduling the post: {' '.join(problems)}")
        # A post waiting for approval stays waiting when anyone moves or reschedules it: only an
        # approval (by someone who did not write it) sends it to TikTok.
        still_waiting = locked.status == PostStatus.PENDING_APPROVAL and locked.account.requires_approval
        submit = by is not None and (needs_approval(by, locked.account) or still_waiting)
        if submit and scheduled_at < timezone.now() + APPROVAL_LEAD_TIME:
            raise PostStateError(
                "Posts for this account are approved before they go out: choose a time at least "
                f"{APPROVAL_LEAD_TIME.seconds // 60} minutes from now."
            )
        new_status = PostStatus.PENDING_APPROVAL if submit else PostStatus.SCHEDULED
        previous = (locked.status, locked.scheduled_at.isoformat() if locked.scheduled_at else None)
        locked.status = new_status
        locked.scheduled_at = scheduled_at
        locked.schedule_time_zone = time_zone
        locked.last_error_code = locked.last_error_message = ""  # an earlier problem is behind it
        locked.updated_by = by
        if submit or locked.review_outcome == ReviewOutcome.REJECTED:
            _clear_review(locked)
        locked.save()
        if submit:
            job_delete(post_id=locked.pk)
            action = "post.submitted"
            notification_emit(
                kind="approval_requested", obj=locked, key=f"{locked.pk}:{locked.updated_at}", actor=by
            )
        else:
            job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=scheduled_at)
            action = "post.scheduled" if previous[0] != PostStatus.SCHEDULED else "post.rescheduled"
        audit_record(
            action=action,
            actor=by,
            obj=locked,
            request=request,
            changes={
                "status": [previous[0], new_status],
                "scheduled_at": [previous[1], scheduled_at.isoformat()],
            },
        )
    return locked


def _video_refusal(post: Post) -> str:
    """Why TikTok would refuse the post's video, from its stored facts ("" when it would take it, or
    there is none yet: the composer says that). The creator's maximum duration is checked where
    creator_info is asked (the composer, the worker)."""
    media = PostMedia.objects.filter(post=post, kind=MediaKind.VIDEO).first()
    if media is None:
        return ""
    problem = video_problem(media_facts(media_probe_if_needed(media=media)))
    return (
        f"TikTok would refuse this post's video. {problem} Open the post to choose another video."
        if problem
        else ""
    )


def _clear_review(post: Post) -> None:
    post.review_outcome = ReviewOutcome.NONE
    post.review_comment = ""
    post.reviewed_by = None
    post.reviewed_at = None
    post.approved_content_hash = ""


def _may_review(by: Any, post: Post) -> None:
    if not user_may(by, Perm.APPROVE, post.account):
        raise PostStateError("You may not review posts for this account.")


def post_approve(*, post: Post, by: Any, seen: dt.datetime | None, request: Any = None) -> Post:
    """Approve a post waiting for approval: it is scheduled for its time.

    `seen` is the post's `updated_at` as the reviewer saw it: a post changed since (a new
    caption or video, resubmitted) is not approved unseen."""
    from apps.publishing.jobs import job_set
    from apps.publishing.models import JobKind

    _agency_may_publish()
    refusal = _video_refusal(post)
    with transaction.atomic():
        locked = _locked(post)
        _may_review(by, locked)
        if locked.status != PostStatus.PENDING_APPROVAL:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()}: there is nothing to approve."
            )
        if refusal:
            raise PostStateError(refusal)
        if is_own_work(by, locked):
            raise PostStateError(OWN_WORK)
        if seen != locked.updated_at:
            raise PostStateError(
                "It changed after you opened it. Look at it again as it is now, then decide."
            )
        due = locked.scheduled_at
        if due is None or due < timezone.now() - dt.timedelta(seconds=5):
            raise PostStateError(
                "Its time has passed, so it was not approved. Reject it with a comment "
                "so the author can choose a new time."
            )
        locked.status = PostStatus.SCHEDULED
        locked.review_outcome = ReviewOutcome.APPROVED
        locked.review_comment = ""
        locked.reviewed_by = by
        locked.reviewed_at = timezone.now()
        locked.approved_content_hash = post_content_hash(locked)
        locked.updated_by = by
        locked.save()
        job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=due)
        audit_record(
            action="post.approved",
            actor=by,
            obj=locked,
            request=request,
            changes={
                "status": [PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED],
                "scheduled_at": due.isoformat(),
            },
        )
        notification_emit(kind="post_approved", obj=locked, key=f"{locked.pk}:{locked.reviewed_at}", actor=by)
    return locked


def post_reject(*, post: Post, comment: str, by: Any, request: Any = None) -> Post:
    """Reject a post waiting for approval: it goes back to its author as a draft, with the comment."""
    comment = comment.strip()
    if not comment:
        raise PostValidationError({"comment": "Say what should change, so the author can fix it."})
    if len(comment) > REVIEW_COMMENT_MAX:
        raise PostValidationError(
            {"comment": f"Keep the comment under {REVIEW_COMMENT_MAX:,} characters ({len(comment):,} now)."}
        )
    with transaction.atomic():
        locked = _locked(post)
        _may_review(by, locked)
        if locked.status != PostStatus.PENDING_APPROVAL:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()}: there is nothing to reject."
            )
        locked.status = PostStatus.DRAFT
        locked.review_outcome = ReviewOutcome.REJECTED
        locked.review_comment = comment
        locked.reviewed_by = by
        locked.reviewed_at = timezone.now()
        locked.updated_by = by
        locked.save()
        audit_record(
            action="post.rejected",
            actor=by,
            obj=locked,
            request=request,
            changes={"status": [PostStatus.PENDING_APPROVAL, PostStatus.DRAFT], "comment": comment},
        )
        key = f"{locked.pk}:{locked.reviewed_at}"
        notification_emit(kind="post_rejected", obj=locked, key=key, actor=by, comment=comment)
    return locked


def post_cancel(*, post: Post, by: Any, request: Any = None) -> Post:
    """Cancel a post no worker has claimed yet.

    Locks the job row and then the post, as the dispatcher does: a dispatcher claiming the
    same post either finds it cancelled or makes this call wait and then refuse.
    """
    from apps.publishing.jobs import job_delete

    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in CANCELLABLE_STATUSES:
            raise PostStateError(
                f"This post is {locked.get_status_display().lower()} and can no longer be cancelled."
            )
        previous = locked.status
        locked.status = PostStatus.CANCELLED
        locked.updated_by = by
        locked.save(update_fields=["status", "updated_by", "updated_at"])
        job_delete(post_id=locked.pk)
        audit_record(
            action="post.cancelled",
            actor=by,
            obj=locked,
            request=request,
            changes={"status": [previous, PostStatus.CANCELLED]},
        )
    return locked


def post_mark_published(*, post: Post, published_post_id: str, by: Any, request: Any = None) -> Post:
    """A person checked TikTok: the post did go out. Only for posts needing attention."""
    from apps.publishing.jobs import job_delete

    published_post_id = published_post_id.strip()
    if published_post_id and not (len(published_post_id) == 19 and published_post_id.isdigit()):
        raise PostStateError("A TikTok post id is 19 digits, as in the post's link.")
    with transaction.atomic():
        locked = _locked(post)
        if locked.status != PostStatus.NEEDS_ATTENTION:
            raise PostStateError("Only posts that need attention can be marked as published.")
        locked.status = PostStatus.PUBLISHED
        locked.published_post_id = published_post_id
        locked.published_at = timezone.now()
        locked.publish_id = locked.publish_id or "marked-by-hand"
        locked.updated_by = by
        locked.save()
        job_delete(post_id=locked.pk)
        audit_record(
            action="post.attention_resolved",
            actor=by,
            obj=locked,
            request=request,
            changes={"resolution": "marked_published", "published_post_id": published_post_id},
        )
    return locked


def post_retry(*, post: Post, by: Any, request: Any = None) -> Post:
    """A person decides to publish again (needs attention or failed): a new attempt, now."""
    from apps.publishing.jobs import job_set
    from apps.publishing.models import JobKind

    _agency_may_publish()
    with transaction.atomic():
        locked = _locked(post)
        if locked.status not in (PostStatus.NEEDS_ATTENTION, PostStatus.FAILED):
            raise PostStateError("Only failed posts and posts that need attention can be retried.")
        previous = locked.status
        now = db_now()  # the dispatcher's clock: due at once even if this process's clock is off
        locked.status = PostStatus.SCHEDULED
        locked.scheduled_at = now
        locked.schedule_time_zone = locked.schedule_time_zone or "UTC"
        locked.publish_id = ""
        locked.upload_url = ""
        locked.last_error_code = ""
        locked.last_error_message = ""
        locked.updated_by = by
        locked.save()
        job_set(post_id=locked.pk, kind=JobKind.PUBLISH, due_at=now)
        audit_record(
            action="post.attention_resolved" if previous == PostStatus.NEEDS_ATTENTION else "post.retried",
            actor=by,
            obj=locked,
            request=request,
            changes={"resolution": "retried", "status": [previous, PostStatus.SCHEDULED]},
        )
    return locked


def post_record_webhook(*, open_id: str, event: str, content: dict[str, Any]) -> PublishAttempt | None:
    """Record a publish event from TikTok on the post it concerns (by publish_id).

    The publishing pipeline acts on the status; here the event is kept in the post's
    attempt history so nobody loses it.
    """
    publish_id = str(content.get("publish_id", ""))
    post = (
        Post.all_objects.filter(publish_id=publish_id, account__open_id=open_id).first()
        if publish_id
        else None
    )
    if post is None:
        return None
    now = timezone.now()
    failed = event == "post.publish.failed"
    _apply_publish_event(post, event, content)
    return PublishAttempt.objects.create(
        post=post,
        attempt_number=max(1, post.attempts.aggregate(n=Max("attempt_number"))["n"] or 1),
        kind=AttemptKind.WEBHOOK,
        started_at=now,
        finished_at=now,
        outcome=AttemptOutcome.FINAL if failed else AttemptOutcome.OK,
        error_code=str(content.get("reason", ""))[:100] if failed else "",
        error_message=event,
    )


def _apply_publish_event(post: Post, event: str, content: dict[str, Any]) -> None:
    """What a publish webhook tells us, applied the same way the status checks would."""
    from apps.publishing.jobs import job_delete
    from apps.publishing.models import JobKind

    with transaction.atomic():
        locked = Post.all_objects.select_for_update().get(pk=post.pk)
        if event in ("post.publish.complete", "post.publish.inbox_delivered") and locked.status in (
            PostStatus.PROCESSING,
            PostStatus.PUBLISHING,
        ):
            locked.status = PostStatus.PUBLISHED
            locked.published_at = timezone.now()
            locked.save(update_fields=["status", "published_at", "updated_at"])
            audit_record(action="post.published", obj=locked, changes={"source": event})
            notification_emit(kind="post_published", obj=locked, key=f"{locked.pk}:{locked.publish_attempts}")
        elif event == "post.publish.failed" and locked.status in (
            PostStatus.PROCESSING,
            PostStatus.PUBLISHING,
        ):
            from apps.tiktok.errors import human_message

            reason = str(content.get("reason", "unknown"))
            locked.status = PostStatus.FAILED
            locked.last_error_code = reason[:100]
            locked.last_error_message = f"TikTok could not publish the video: {human_message(reason)}"
            locked.save(update_fields=["status", "last_error_code", "last_error_message", "updated_at"])
            job_delete(post_id=locked.pk)
            audit_record(action="post.failed", obj=locked, changes={"source": event, "reason": reason})
            key, message = f"{locked.pk}:{locked.publish_attempts}", locked.last_error_message
            notification_emit(kind="post_failed", obj=locked, key=key, message=message)
        elif event == "post.publish.publicly_available":
            post_id = str(content.get("post_id", ""))
            if len(post_id) == 19 and post_id.isdigit() and not locked.published_post_id:
                locked.published_post_id = post_id
                newly_published = locked.status != PostStatus.PUBLISHED
                if newly_published:
                    locked.status = PostStatus.PUBLISHED
                    locked.published_at = locked.published_at or timezone.now()
                locked.save(update_fields=["published_post_id", "status", "published_at", "updated_at"])
                job_delete(post_id=locked.pk, kind=JobKind.POLL)
                if newly_published:
                    audit_record(action="post.published", obj=locked, changes={"source": event})
