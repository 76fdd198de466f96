"""Posts, their media and every call made to TikTok on their behalf."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, ClassVar, Self

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import LessThanOrEqual

from apps.accounts.models import SECRET_FIELDS
from apps.common.expressions import Utf16Length
from apps.common.models import SoftDeleteManager, SoftDeleteModel, SoftDeleteQuerySet, TimestampedModel
from apps.common.pagination import Keyset
from apps.tiktok.errors import human_message
from apps.users.models import validate_time_zone

CAPTION_MAX_UTF16 = 2200
MAX_VIDEO_BYTES = 4_000_000_000  # TikTok: "up to 4 GB", decimal like its MB
# Photo posts (content/init): a title of at most 90 UTF-16 units (the caption) and a description.
PHOTO_TITLE_MAX_UTF16 = 90
PHOTO_DESCRIPTION_MAX_UTF16 = 4000
MAX_PHOTO_BYTES = 20_000_000
MAX_PHOTOS = 35


class PostStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHING = "publishing", "Publishing"
    PROCESSING = "processing", "Processing at TikTok"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


# A person may still reschedule these: no worker has claimed them.
SCHEDULABLE_STATUSES = frozenset({PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED})
# A post page's "Reschedule" moves these; a draft is scheduled from the composer, which checks it.
RESCHEDULABLE_STATUSES = frozenset({PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED})
# The rows that may hold content TikTok would refuse (checked again before scheduling).
UNFINISHED = Q(status__in=[PostStatus.DRAFT, PostStatus.CANCELLED])
# A person may still cancel these: no worker has claimed them.
CANCELLABLE_STATUSES = frozenset(
    {PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED, PostStatus.FAILED}
)


# The posts list: newest scheduled first, posts without a time (drafts mostly) on top, then newest
# created, then by id so that no two posts tie (apps.common.pagination). A post without a time
# sorts as if scheduled at the end of time; `posts_list_idx` holds the same expression.
UNSCHEDULED_SORTS_AT = datetime(9999, 12, 31, tzinfo=UTC)


def list_time() -> Coalesce:
    return Coalesce("scheduled_at", Value(UNSCHEDULED_SORTS_AT))


POST_LIST_ORDER = Keyset(("list_time", "created_at", "id"), descending=True)


class PrivacyLevel(models.TextChoices):
    PUBLIC_TO_EVERYONE = "PUBLIC_TO_EVERYONE", "Everyone"
    MUTUAL_FOLLOW_FRIENDS = "MUTUAL_FOLLOW_FRIENDS", "Friends"
    FOLLOWER_OF_CREATOR = "FOLLOWER_OF_CREATOR", "Followers"
    SELF_ONLY = "SELF_ONLY", "Only me"


class ReviewOutcome(models.TextChoices):
    NONE = "", "Not reviewed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PublishMode(models.TextChoices):
    DIRECT = "direct", "Post directly"
    INBOX = "inbox", "Send to the creator's TikTok inbox as a draft"


class MediaType(models.TextChoices):
    VIDEO = "video", "Video"
    PHOTO = "photo", "Photos"


class PostQuerySet(SoftDeleteQuerySet):
    def due(self, now: datetime) -> Self:
        """Scheduled posts whose time has come, oldest first (served by posts_due_idx)."""
        return self.filter(status=PostStatus.SCHEDULED, scheduled_at__lte=now).order_by("scheduled_at")

    def for_account(self, account_id: uuid.UUID) -> Self:
        return self.filter(account_id=account_id).select_related("account")

    def visible_to(self, user: Any, perm: str = "view_tiktokaccount") -> Self:
        """Posts of the accounts on which `user` holds `perm` (by default: may see). Every posts
        page, fragment and download goes through this one method (apps.accounts.permissions)."""
        from apps.accounts.permissions import Perm, granted_account_ids, holds_every_account

        if not (user.is_authenticated and user.is_active):
            return self.none()
        if holds_every_account(user):
            return self.all()
        return self.filter(account_id__in=granted_account_ids(user, Perm(perm)))

    def with_account(self) -> Self:
        """Each post with its account in the same query, without the account's secrets."""
        return self.select_related("account").defer(*(f"account__{name}" for name in SECRET_FIELDS))

    def for_list(self) -> Self:
        """What the posts list shows, in POST_LIST_ORDER (apply it with apps.common.pagination)."""
        return self.with_account().annotate(list_time=list_time())


class PostManager(SoftDeleteManager.from_queryset(PostQuerySet)):  # type: ignore[misc]
    pass


class Post(SoftDeleteModel):
    account = models.ForeignKey("accounts.TikTokAccount", on_delete=models.PROTECT, related_name="posts")
    caption = models.TextField(blank=True)
    privacy_level = models.CharField(max_length=32, choices=PrivacyLevel.choices, blank=True)
    allow_comment = models.BooleanField(default=False)
    allow_duet = models.BooleanField(default=False)
    allow_stitch = models.BooleanField(default=False)
    commercial_disclosure = models.BooleanField(default=False)
    brand_organic = models.BooleanField("your brand", default=False)
    brand_content = models.BooleanField("branded content", default=False)
    is_aigc = models.BooleanField("AI-generated content", default=False)
    mode = models.CharField(max_length=8, choices=PublishMode.choices, default=PublishMode.DIRECT)
    media_type = models.CharField(max_length=8, choices=MediaType.choices, default=MediaType.VIDEO)
    # Photo posts only: the caption is their title (at most 90 units), this their description.
    description = models.TextField(blank=True)
    auto_add_music = models.BooleanField(default=False)
    photo_cover_index = models.PositiveSmallIntegerField(default=0)
    # How many photos the carousel holds (kept by apps.posts.services._attach_photos), so that
    # lists and the calendar say "3 photos" without reading the photos.
    photo_count = models.PositiveSmallIntegerField(default=0)
    video_cover_timestamp_ms = models.PositiveIntegerField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    schedule_time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    status = models.CharField(max_length=20, choices=PostStatus.choices, default=PostStatus.DRAFT)
    publish_id = models.CharField(max_length=64, blank=True)
    published_post_id = models.CharField(max_length=19, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    upload_url = models.TextField(
        blank=True, help_text="TikTok's upload URL for this publish (valid one hour)."
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took the post to publish it."
    )
    publish_attempts = models.PositiveSmallIntegerField(default=0)
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    # The last approval decision, shown to the author until the post is submitted again.
    review_outcome = models.CharField(max_length=8, choices=ReviewOutcome.choices, blank=True)
    review_comment = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # sha256 of exactly what the reviewer approved (apps.posts.selectors.post_content_hash): the
    # approval holds only while the post still hashes to it.
    approved_content_hash = models.CharField(max_length=64, blank=True)

    objects: ClassVar[PostManager] = PostManager()

    class Meta:
        ordering = ["-scheduled_at", "-created_at"]
        constraints = [
            # TikTok's content rules hold from scheduling on: a draft (or a draft cancelled) may
            # be unfinished, and the composer lists what it still lacks (post_draft_problems).
            models.CheckConstraint(
                condition=UNFINISHED | Q(LessThanOrEqual(Utf16Length("caption"), CAPTION_MAX_UTF16)),
                name="posts_post_caption_max_2200_utf16",
            ),
            models.CheckConstraint(condition=Q(status__in=PostStatus.values), name="posts_post_status_valid"),
            models.CheckConstraint(
                condition=Q(privacy_level="") | Q(privacy_level__in=PrivacyLevel.values),
                name="posts_post_privacy_level_valid",
            ),
            models.CheckConstraint(
                condition=UNFINISHED | ~Q(brand_content=True, privacy_level=PrivacyLevel.SELF_ONLY),
                name="posts_post_branded_content_not_private",
            ),
            models.CheckConstraint(
                condition=UNFINISHED
                | Q(commercial_disclosure=False, brand_organic=False, brand_content=False)
                | Q(commercial_disclosure=True, brand_organic=True)
                | Q(commercial_disclosure=True, brand_content=True),
                name="posts_post_disclosure_names_whose_brand",
            ),
            # Past a draft, a post must say who may see it: TikTok has no default.
            models.CheckConstraint(
                condition=Q(status__in=[PostStatus.DRAFT, PostStatus.CANCELLED]) | ~Q(privacy_level=""),
                name="posts_post_privacy_chosen_unless_draft",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL])
                | Q(scheduled_at__isnull=False),
                name="posts_post_scheduled_has_time",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_at__isnull=True) | ~Q(schedule_time_zone=""),
                name="posts_post_schedule_has_time_zone",
            ),
            models.CheckConstraint(
                condition=Q(published_post_id="") | Q(published_post_id__regex=r"^[0-9]{19}$"),
                name="posts_post_published_id_19_digits",
            ),
            models.CheckConstraint(
                condition=~Q(status=PostStatus.PUBLISHED) | Q(published_at__isnull=False),
                name="posts_post_published_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[PostStatus.PROCESSING, PostStatus.PUBLISHED]) | ~Q(publish_id=""),
                name="posts_post_processing_has_publish_id",
            ),
            models.CheckConstraint(condition=Q(mode__in=PublishMode.values), name="posts_post_mode_valid"),
            models.CheckConstraint(
                condition=Q(media_type__in=MediaType.values), name="posts_post_media_type_valid"
            ),
            models.CheckConstraint(
                condition=UNFINISHED
                | Q(media_type=MediaType.VIDEO)
                | Q(LessThanOrEqual(Utf16Length("caption"), PHOTO_TITLE_MAX_UTF16)),
                name="posts_post_photo_title_max_90_utf16",
            ),
            models.CheckConstraint(
                condition=UNFINISHED
                | Q(LessThanOrEqual(Utf16Length("description"), PHOTO_DESCRIPTION_MAX_UTF16)),
                name="posts_post_description_max_4000_utf16",
            ),
            # Photos have no duet or stitch.
            models.CheckConstraint(
                condition=Q(media_type=MediaType.VIDEO) | Q(allow_duet=False, allow_stitch=False),
                name="posts_post_photo_no_duet_or_stitch",
            ),
            models.CheckConstraint(
                condition=Q(review_outcome="", reviewed_at__isnull=True, reviewed_by__isnull=True)
                | Q(
                    review_outcome__in=[ReviewOutcome.APPROVED, ReviewOutcome.REJECTED],
                    reviewed_at__isnull=False,
                ),
                name="posts_post_review_recorded_with_time",
            ),
            # A rejection always says why.
            models.CheckConstraint(
                condition=~Q(review_outcome=ReviewOutcome.REJECTED) | ~Q(review_comment=""),
                name="posts_post_rejection_has_comment",
            ),
        ]
        indexes = [
            # The dispatcher's query: scheduled posts by time.
            models.Index(
                fields=["scheduled_at"],
                name="posts_due_idx",
                condition=Q(status=PostStatus.SCHEDULED, deleted_at__isnull=True),
            ),
            models.Index(fields=["account", "status", "scheduled_at"], name="posts_account_status_idx"),
            # The posts list's pages (POST_LIST_ORDER), for everyone and for one account.
            models.Index(
                list_time().desc(),
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="posts_list_idx",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(
                models.F("account"),
                list_time().desc(),
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="posts_list_by_account_idx",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(fields=["status", "scheduled_at"], name="posts_status_time_idx"),
            # The dashboard's two lists read their first rows from these, however many posts the
            # agency ever had (apps.schedule.selectors: posts_upcoming, posts_needing_attention).
            models.Index(
                fields=["scheduled_at", "created_at"],
                name="posts_upcoming_idx",
                condition=Q(
                    deleted_at__isnull=True,
                    scheduled_at__isnull=False,
                    status__in=["pending_approval", "scheduled", "publishing", "processing"],
                ),
            ),
            models.Index(
                fields=["-updated_at"],
                name="posts_attention_idx",
                condition=Q(deleted_at__isnull=True)
                & (
                    Q(status="needs_attention")
                    | Q(status="failed")
                    | Q(status="draft", last_error_code="account_disconnected")
                ),
            ),
            models.Index(fields=["publish_id"], name="posts_publish_id_idx", condition=~Q(publish_id="")),
            # The author's dashboard: decisions on their posts.
            models.Index(
                fields=["created_by", "-reviewed_at"],
                name="posts_reviews_by_author_idx",
                condition=Q(reviewed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return post_title(self.caption)

    @property
    def photos_label(self) -> str:
        """What a photo post holds, as people read it ("3 photos"); "" for a video."""
        return photos_label(self.media_type, self.photo_count)

    @property
    def status_label(self) -> str:
        return status_label(self.status, self.mode)


# What a post is called, holds and is at, as people read it: for posts, and for the calendar's
# rows read without whole posts (apps.schedule.selectors.CalendarPost).


def post_title(caption: str) -> str:
    """A post's name: its caption's first line, shortened to 60 characters."""
    title = caption.strip().splitlines()[0] if caption.strip() else "(no caption)"
    return title if len(title) <= 60 else title[:59].rstrip() + "…"


def photos_label(media_type: str, photo_count: int) -> str:
    if media_type != MediaType.PHOTO:
        return ""
    return "1 photo" if photo_count == 1 else f"{photo_count} photos"


def status_label(status: str, mode: str) -> str:
    """The status as people read it: a video delivered to the creator's inbox is a draft there,
    not a published post."""
    if status == PostStatus.PUBLISHED and mode == PublishMode.INBOX:
        return "In the creator's inbox"
    return str(PostStatus(status).label)


def media_upload_to(instance: PostMedia, filename: str) -> str:
    """A name of our own making: only a known extension survives from the user's file name."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in {".mp4", ".mov", ".webm", ".jpg", ".jpeg", ".png", ".webp"}:
        suffix = ""
    return f"posts/{instance.kind}/{uuid.uuid4().hex}{suffix}"


class MediaKind(models.TextChoices):
    VIDEO = "video", "Video"
    COVER = "cover", "Cover image"
    PHOTO = "photo", "Photo"


PHOTO_TYPES = ("image/jpeg", "image/webp")


class PostMedia(SoftDeleteModel):
    # Media can exist before its post does (uploaded while composing).
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=8, choices=MediaKind.choices, default=MediaKind.VIDEO)
    file = models.FileField(upload_to=media_upload_to, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField()
    mime_type = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    duration_seconds = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Probed once (apps.posts.media.probe_video) so that scheduling checks them without the file.
    frame_rate = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    video_codec = models.CharField(max_length=32, blank=True, help_text="H.264, H.265, VP8, VP9 or another")
    probed_at = models.DateTimeField(null=True, blank=True, help_text="When codec and frame rate were read.")
    # A photo's place in its post's carousel (0-based), once attached.
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    # The library item this file is (apps.media.models): the row names the item's stored object,
    # shared with every other post that reuses it. Kept while any post's row refers to it.
    library_item = models.ForeignKey(
        "media.MediaItem", null=True, blank=True, on_delete=models.PROTECT, related_name="uses"
    )

    class Meta:
        verbose_name_plural = "post media"
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(size_bytes__gt=0, size_bytes__lte=MAX_VIDEO_BYTES), name="posts_media_size_range"
            ),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="posts_media_sha256_hex"
            ),
            models.CheckConstraint(
                condition=~Q(kind=MediaKind.VIDEO)
                | Q(mime_type__in=["video/mp4", "video/quicktime", "video/webm"]),
                name="posts_media_video_type",
            ),
            models.CheckConstraint(condition=Q(kind__in=MediaKind.values), name="posts_media_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind=MediaKind.PHOTO)
                | Q(mime_type__in=PHOTO_TYPES, size_bytes__lte=MAX_PHOTO_BYTES),
                name="posts_media_photo_type_and_size",
            ),
            # One photo per place in a post's carousel.
            models.UniqueConstraint(
                fields=["post", "position"],
                condition=Q(kind=MediaKind.PHOTO, deleted_at__isnull=True, post__isnull=False),
                name="posts_media_one_photo_per_position",
            ),
            # One video per post.
            models.UniqueConstraint(
                fields=["post"],
                condition=Q(kind=MediaKind.VIDEO, deleted_at__isnull=True, post__isnull=False),
                name="posts_media_one_video_per_post",
            ),
        ]

    def __str__(self) -> str:
        return self.original_name or self.file.name or ""


class AttemptKind(models.TextChoices):
    CREATOR_INFO = "creator_info", "Creator info"
    INIT = "init", "Init"
    UPLOAD = "upload", "Upload chunk"
    STATUS = "status", "Status check"
    TOKEN_REFRESH = "token_refresh", "Token refresh"
    WEBHOOK = "webhook", "Webhook event"


class AttemptOutcome(models.TextChoices):
    PENDING = "pending", "In progress"
    OK = "ok", "Succeeded"
    RETRYABLE = "retryable", "Failed, will retry"
    FINAL = "final", "Failed"
    NEEDS_REAUTH = "needs_reauth", "Needs reconnecting"
    UNKNOWN = "unknown", "Outcome unknown"


class PublishAttempt(TimestampedModel):
    """One call that could change TikTok's state or learn about it. Never holds tokens."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    kind = models.CharField(max_length=16, choices=AttemptKind.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.PENDING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    log_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["started_at"]
        constraints = [
            models.CheckConstraint(condition=Q(attempt_number__gte=1), name="posts_attempt_number_positive"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=models.F("started_at")),
                name="posts_attempt_finishes_after_start",
            ),
            models.CheckConstraint(condition=Q(kind__in=AttemptKind.values), name="posts_attempt_kind_valid"),
            models.CheckConstraint(
                condition=Q(outcome__in=AttemptOutcome.values), name="posts_attempt_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(http_status__isnull=True) | Q(http_status__gte=100, http_status__lte=599),
                name="posts_attempt_http_status_range",
            ),
        ]
        indexes = [
            models.Index(fields=["post", "started_at"], name="posts_attempts_by_post_idx"),
            # The daily-cap counts read the last day's accepted create-post calls alone
            # (apps.accounts.posting_limits.posting_counts).
            models.Index(
                fields=["started_at"],
                condition=models.Q(kind="init", outcome="ok"),
                name="posts_attempts_accepted_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.attempt_number}: {self.get_outcome_display()}"

    @property
    def reason(self) -> str:
        """What a person reads about this call: our sentence for TikTok's code. TikTok's own text
        (error_message, kept for support) is never shown; a webhook's is the event's name."""
        if self.kind == AttemptKind.WEBHOOK:
            return self.error_message
        return human_message(self.error_code) if self.error_code else ""
