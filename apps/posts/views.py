"""Posts pages: the list, the composer (with its creator-info and upload fragments), the post's
page with its live status, and the actions on a post (POST, redirect, GET)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_tenants.utils import schema_context

from apps.accounts.models import SECRET_FIELDS, TikTokAccount
from apps.accounts.permissions import (
    ROLE_DEFAULTS,
    Perm,
    account_perms,
    accounts_with,
    holds_every_account,
    may_connect,
    may_publish_directly,
    needs_approval,
)
from apps.accounts.posting_limits import DAILY_CAP, WARN_AT
from apps.captions.selectors import snippets_for
from apps.common.expressions import utf16_length
from apps.common.http import HtmxHttpRequest
from apps.common.pagination import Keyset, keyset_page
from apps.media.models import LibraryKind
from apps.media.selectors import get_item_for_user, library_items_for, may_use_library
from apps.media.services import storage_full_message, storage_use
from apps.media.storage import media_storage
from apps.media.uploads import (
    EMPTY,
    NOT_ACCEPTED,
    TOO_LARGE,
    TOO_MANY,
    AlsoUpload,
    StoredUpload,
    discard_uploads,
    streams_upload,
    upload_handler,
)
from apps.posts.forms import (
    DRAFT,
    NOW,
    QUEUE,
    SCHEDULE,
    ComposeForm,
    MarkPublishedForm,
    RescheduleForm,
    compose_initial,
)
from apps.posts.media import NOT_A_VIDEO, MediaError, duration_text, video_name_for
from apps.posts.models import (
    CANCELLABLE_STATUSES,
    CAPTION_MAX_UTF16,
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    MAX_VIDEO_BYTES,
    POST_LIST_ORDER,
    RESCHEDULABLE_STATUSES,
    MediaKind,
    MediaType,
    Post,
    PostMedia,
    PostStatus,
    PublishMode,
)
from apps.posts.photos import photo_name_for, photo_token_read, sniff_photo_type
from apps.posts.queueing import no_free_slot, queue_reserve_next_slot
from apps.posts.selectors import (
    PHOTO_FIELDS,
    PUBLISH_DIRECTLY,
    TIKTOK_FIELDS,
    account_for_user,
    accounts_for_composer,
    approval_is_current,
    attempts_for_user,
    get_media_for_user,
    get_post_for_user,
    is_own_work,
    post_video,
    posts_awaiting_review,
    posts_filtered,
)
from apps.posts.services import (
    APPROVAL_LEAD_TIME,
    EDITABLE_STATUSES,
    OWN_WORK,
    CreatorCheck,
    PostConflictError,
    PostStateError,
    PostValidationError,
    creator_check,
    media_from_library,
    media_upload,
    photo_upload,
    post_approve,
    post_cancel,
    post_draft_problems,
    post_mark_published,
    post_photos,
    post_reject,
    post_retry,
    post_save,
    post_schedule,
    publish_now_unavailable,
)
from apps.publishing.services import POLL_GIVE_UP_AFTER, account_posts_last_24h
from apps.users.models import User
from tenants.models import Agency, AgencyStatus

PAGE_SIZE = 25
# The approvals queue, soonest first, a page at a time (each item shows its video and forms).
APPROVALS_ORDER = Keyset(("scheduled_at", "created_at", "id"))
APPROVALS_PAGE_SIZE = 20
# What a queue item shows ({% review_items %}): what goes to TikTok with the post, its author and
# account. Twenty whole posts, accounts and authors were a third of the page's time, and most of
# their columns are the pipeline's.
APPROVALS_FIELDS = (
    *APPROVALS_ORDER.keys,
    *TIKTOK_FIELDS,
    *PHOTO_FIELDS,
    "photo_count",
    "updated_at",
    "account",
    "account__username",
    "account__display_name",
    "account__open_id",
    "created_by",
    "created_by__name",
    "created_by__email",
)
# The post page polls while something is about to happen or is happening.
POLL_BEFORE_DUE = dt.timedelta(minutes=1)
# A scheduled post further away gets one refresh when it enters the polling window.
WAKE_UP_WITHIN = dt.timedelta(hours=1)
MEDIA_GONE = "The uploaded video is no longer available. Upload it again."
REFUSALS = {
    TOO_LARGE: "The video is larger than TikTok's limit of 4 GB.",
    NOT_ACCEPTED: NOT_A_VIDEO,
    EMPTY: "The file is empty. Choose the video again.",
}
# Why a photo was refused before it was read whole; `which` names it ("Photo 4 (loaf.jpg)").
PHOTO_REFUSALS = {
    TOO_LARGE: "{which} is larger than TikTok's limit of 20 MB a photo. Save it smaller and upload it again.",
    NOT_ACCEPTED: (
        "{which} is not a JPEG or WebP image (we check what the file contains, not its name). "
        "Save it as JPEG and upload it again."
    ),
    EMPTY: "{which} is empty. Choose it again.",
}
NO_PHOTO_CHOSEN = "Choose one or more JPEG or WebP photos to add."
# How many of the library's newest items the composer offers to reuse (the library page finds others).
LIBRARY_CHOICES = 200


def _user(request: HtmxHttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- List ---


@require_GET
@login_required
@vary_on_headers("HX-Request")
def post_list(request: HtmxHttpRequest) -> HttpResponse:
    user = _user(request)
    accounts = list(accounts_with(user).defer(*SECRET_FIELDS))
    posts, status, account_id = posts_filtered(
        Post.objects.visible_to(user).for_list(), request.GET, accounts
    )
    context = {
        "page": keyset_page(posts, POST_LIST_ORDER, request.GET, size=PAGE_SIZE),
        "statuses": PostStatus.choices,
        "accounts": accounts,
        "status": status,
        "account_id": account_id,
        "time_zone": user.time_zone or "UTC",
        "may_compose": accounts_with(user, Perm.DRAFT).exists(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "posts/list.html#list", context)
    return render(request, "posts/list.html", context)


# --- Composer ---


def _creator_context(form: ComposeForm, creator: CreatorCheck | None, user: User) -> dict[str, Any]:
    """What the creator fragment shows: TikTok's answer, the switches, the daily-cap warning."""
    info = creator.info if creator is not None else None
    interactions = [
        (form["allow_comment"], "Comment", bool(info and info.comment_disabled)),
        (form["allow_duet"], "Duet", bool(info and info.duet_disabled)),
        (form["allow_stitch"], "Stitch", bool(info and info.stitch_disabled)),
    ]
    posted = account_posts_last_24h(account_id=creator.account.pk) if creator is not None else 0
    approval_needed = creator is not None and needs_approval(user, creator.account)
    return {
        "creator": creator,
        "interactions": interactions,
        "posts_last_24h": posted,
        "near_daily_cap": posted >= WARN_AT,
        "daily_cap": DAILY_CAP,
        "max_duration": duration_text(Decimal(info.max_video_post_duration_sec)) if info else "",
        "approval_needed": approval_needed,
        "approval_lead_minutes": APPROVAL_LEAD_TIME.seconds // 60,
        "now_unavailable": publish_now_unavailable(creator.account) if creator and approval_needed else "",
    }


def _compose_context(
    request: HtmxHttpRequest, form: ComposeForm, post: Post | None, creator: CreatorCheck | None
) -> dict[str, Any]:
    media = form.video_media
    values = form.data if form.is_bound else form.initial
    disclosure = _checked(form, "commercial_disclosure")
    account_value = form["account"].value()
    accounts = list(form.fields["account"].queryset)  # type: ignore[attr-defined]
    return {
        "form": form,
        "post": post,
        "accounts": accounts,
        "account_value": str(account_value) if account_value else "",
        "caption_length": utf16_length(str(form["caption"].value() or "").replace("\r\n", "\n")),
        "caption_max_text": f"{CAPTION_MAX_UTF16:,}",
        "media": media,
        "video_errors": form["video"].errors,
        "photos": form.photo_media,
        "photo_errors": form["photos"].errors,
        "cover_id": _cover_id(form.photo_media, form["photo_cover"].value()),
        "media_type": values.get("media_type") or MediaType.VIDEO,
        "branded": disclosure and _checked(form, "brand_content"),
        "disclosure": disclosure,
        "caption_max": CAPTION_MAX_UTF16,
        "publish_modes": PublishMode.choices,
        "mode": values.get("mode") or PublishMode.DIRECT,
        "time_zones": form.fields["time_zone"].choices,  # type: ignore[attr-defined]
        "may_connect": may_connect(_user(request)),
        "user_time_zone": _user(request).time_zone or "UTC",
        # Opening a draft saved with problems: what is still to fix (a form sent shows its errors).
        "draft_problems": post_draft_problems(post)
        if post is not None and post.status == PostStatus.DRAFT and not form.is_bound
        else [],
        "caption_snippets": list(snippets_for(_user(request))) if accounts else [],
        # The media library, to reuse a video or images instead of uploading them again.
        "library_videos": list(library_items_for(_user(request)).of_kind(LibraryKind.VIDEO)[:LIBRARY_CHOICES])
        if accounts
        else [],
        "library_images": list(library_items_for(_user(request)).of_kind(LibraryKind.IMAGE)[:LIBRARY_CHOICES])
        if accounts
        else [],
        # Opened from the library's "Use in a new post": that item chosen.
        "library_item_value": "" if form.is_bound else request.GET.get("library_item", ""),
        **_creator_context(form, creator, _user(request)),
        **({} if accounts else _no_account_context(_user(request))),
    }


def _cover_id(photos: list[PostMedia], chosen: Any) -> str:
    """The cover's id, as the carousel's radio buttons and the preview mark it: the photo chosen
    if it is still in the carousel, else the first one ("" without photos)."""
    ids = [str(photo.pk) for photo in photos]
    return str(chosen) if str(chosen or "") in ids else (ids[0] if ids else "")


def _photo_which(place: int, file_name: str) -> str:
    """How a message names a photo: its place in the carousel and the name of its file."""
    name = file_name if len(file_name) <= 60 else file_name[:59] + "…"
    return f"Photo {place} ({name})" if name else f"Photo {place}"


def _photos_added(request: HtmxHttpRequest, photos: list[PostMedia]) -> list[str]:
    """Check the photos sent in the `photo` field (one or several; by the carousel's upload with
    JavaScript or with the whole form without it) and add those TikTok takes at the end of
    `photos`. Returns why each other one was refused, naming it by the place it would have had
    and its file name; the carousel as it was, and the photos added, stay."""
    handler = upload_handler(request, "photo")
    errors: list[str] = []
    for received in handler.received if handler is not None else []:
        which = _photo_which(len(photos) + 1, received.file_name)
        if received.refusal == TOO_MANY or (received.upload is not None and len(photos) >= MAX_PHOTOS):
            if received.upload is not None:
                received.upload.discard()
            name = received.file_name or "A photo"
            errors.append(f"{name} was not added: a photo post holds at most {MAX_PHOTOS} photos.")
        elif received.upload is None:
            errors.append(PHOTO_REFUSALS[received.refusal].format(which=which))
        else:
            try:
                photos.append(
                    photo_upload(file=received.upload, by=_user(request), request=request, which=which)
                )
            except MediaError as exc:
                errors.append(str(exc))
    return errors


def _carousel_edited(request: HtmxHttpRequest, photos: list[PostMedia]) -> tuple[list[PostMedia], bool]:
    """The carousel after the change its buttons ask for (`move` "<id>:left" or "<id>:right",
    `remove` an id), and whether one was asked. Nothing is saved until the post is."""
    ids = [str(photo.pk) for photo in photos]
    photos = list(photos)
    target, _, direction = request.POST.get("move", "").partition(":")
    if target in ids:
        at = ids.index(target)
        to = at - 1 if direction == "left" else at + 1
        if 0 <= to < len(photos):
            photos[at], photos[to] = photos[to], photos[at]
    removed = request.POST.get("remove", "")
    photos = [photo for photo in photos if str(photo.pk) != removed]
    return photos, bool(target or removed)


def _photos_from(request: HtmxHttpRequest) -> list[PostMedia]:
    """The photos a composer request names (photo_ids, in carousel order), each through the
    media gate (404 for one the person may not see)."""
    user = _user(request)
    photos = []
    for value in request.POST.getlist("photo_ids")[: MAX_PHOTOS + 1]:
        media_id = _uuid(value)
        if media_id is None:
            raise Http404("No such photo.")
        media = get_media_for_user(user, media_id)
        if media.kind != MediaKind.PHOTO:
            raise Http404("No such photo.")
        if media not in photos:
            photos.append(media)
    return photos


def _photos_in_carousel(request: HtmxHttpRequest) -> list[PostMedia]:
    """`_photos_from` for a view that received files: a 404 leaves none of them in storage."""
    try:
        return _photos_from(request)
    except Http404:
        discard_uploads(request)
        raise


def _no_account_context(user: User) -> dict[str, Any]:
    """Why the composer has no account to offer, for its message: `inactive_accounts` (those the
    user may post for, none of them active), or `may_only` (what the user may do with posts
    instead of writing them: "view", "view and approve") with `because_of_role`."""
    drafting = list(accounts_with(user, Perm.DRAFT))
    if drafting:
        return {"inactive_accounts": drafting}
    role_perms = ROLE_DEFAULTS.get(user.role, frozenset())
    if accounts_with(user).exists():
        approves = accounts_with(user, Perm.APPROVE).exists()
    elif Perm.DRAFT not in role_perms:
        approves = Perm.APPROVE in role_perms
    else:
        return {}  # no access yet, but their role writes posts once they are given accounts
    return {
        "may_only": "view and approve" if approves else "view",
        "because_of_role": Perm.DRAFT not in role_perms,
    }


def _checked(form: ComposeForm, name: str) -> bool:
    return bool(form[name].value())


def _account_from(
    request: HtmxHttpRequest, value: str | None, post: Post | None = None
) -> TikTokAccount | None:
    account_id = _uuid(value)
    if account_id is None:
        return None
    return accounts_for_composer(_user(request), post).filter(pk=account_id).first()


def _compose(request: HtmxHttpRequest, post: Post | None) -> HttpResponse:
    """The composer for a new post or an existing one: GET shows it, POST saves it."""
    user = _user(request)
    if request.method == "GET":
        account = _account_from(request, request.GET.get("account"), post) or (post.account if post else None)
        creator = creator_check(account=account) if account is not None else None
        initial = compose_initial(user=user, post=post, account=account)
        form = ComposeForm(initial=initial, user=user, post=post)
        form.video_media = post_video(post) if post is not None else None
        form.photo_media = post_photos(post) if post is not None else []
        if post is not None and form.photo_media:
            cover = min(post.photo_cover_index, len(form.photo_media) - 1)
            form.initial["photo_cover"] = form.photo_media[cover].pk
        return render(request, "posts/compose.html", _compose_context(request, form, post, creator))

    account = _account_from(request, request.POST.get("account"), post)
    creator = creator_check(account=account) if account is not None else None
    media, media_error = _media_from(request, creator)
    if media is None and post is not None and not media_error:
        media = post_video(post)
    # Photos: those in the carousel, those sent with the form (without JavaScript), then the
    # change a carousel button asked for, which only shows the composer again, unsaved.
    photos = _photos_in_carousel(request)
    photo_errors = _photos_added(request, photos)
    _library_photos(request, photos)
    photos, carousel_changed = _carousel_edited(request, photos)
    form = ComposeForm(
        request.POST, request.FILES, user=user, post=post, creator=creator, media=media, photos=photos
    )
    if carousel_changed or "add_photos" in request.POST:
        form.errors_only({"video": [media_error] if media_error else [], "photos": photo_errors})
        return render(request, "posts/compose.html", _compose_context(request, form, post, creator))
    valid = form.is_valid()
    if media_error:
        form.add_error("video", media_error)
        valid = False
    for error in photo_errors:
        form.add_error("photos", error)
        valid = False
    if valid and form.content is not None:
        queued = form.chosen_action == QUEUE
        try:
            # "Add to queue": the account's queue is held while the post takes its next free slot.
            reserved = (
                queue_reserve_next_slot(account=form.content.account, by=user)
                if queued
                else nullcontext(None)
            )
            with reserved as slot:
                if queued and slot is None:
                    raise PostValidationError({"action": no_free_slot(form.content.account)})
                saved = post_save(
                    post=post,
                    content=form.content,
                    media=media,
                    by=user,
                    scheduled_at=slot.at if slot is not None else form.when,
                    time_zone=slot.time_zone if slot is not None else form.cleaned_data["time_zone"],
                    schedule=form.publishing,
                    publish_now=form.chosen_action == NOW,
                    creator=creator,
                    request=request,
                    photos=photos if form.content.media_type == MediaType.PHOTO else None,
                    seen=form.seen_version if post is not None else None,
                    keep_problems=form.chosen_action == DRAFT,
                )
        except PostConflictError as exc:
            form.add_error(None, _conflict_message(exc, user))
            form.carry_version(exc.version)
        except PostValidationError as exc:
            form.add_service_errors(exc.errors)
        except PostStateError as exc:
            messages.error(request, str(exc))
            if post is not None:
                return redirect("posts:detail", pk=post.pk)
            form.add_error(None, str(exc))
        else:
            if form.draft_problems:
                messages.warning(
                    request,
                    "Draft saved, but it cannot be scheduled yet: " + " ".join(form.draft_problems.values()),
                )
            else:
                messages.success(request, _saved_message(saved, form.chosen_action))
            return redirect("posts:detail", pk=saved.pk)
    return render(request, "posts/compose.html", _compose_context(request, form, post, creator))


def _conflict_message(conflict: PostConflictError, user: User) -> str:
    """Who saved the post since this form was opened, when, and what they changed."""
    at = conflict.at.astimezone(zoneinfo.ZoneInfo(user.time_zone or "UTC"))
    who = "You" if conflict.by == user.email else conflict.by
    where = " (in another tab, or before going back to this page)" if who == "You" else ""
    what = f", changing the {', '.join(conflict.changed)}" if conflict.changed else ""
    return (
        f"Not saved: {who} saved this post at {at:%H:%M:%S} {at.tzname()}{where}{what}, after this page "
        "was opened. What you entered is kept below: compare it with the saved post (open it in "
        "another tab), then save again to replace it with yours."
    )


def _saved_message(post: Post, action: str) -> str:
    if post.status == PostStatus.PENDING_APPROVAL:
        return (
            "Sent for approval. Nothing goes to TikTok until a reviewer approves it; "
            "it then goes out at the time shown below."
        )
    if action == NOW:
        return (
            "Publishing now. TikTok processes the video after the upload; this can take a few minutes. "
            "This page shows how it goes."
        )
    if action == SCHEDULE:
        return "Scheduled. It will be published at the time shown below."
    if action == QUEUE:
        return "Added to the queue: scheduled at the account's next free slot, the time shown below."
    return "Draft saved. Nothing is sent to TikTok until you schedule or publish it."


def _media_from(request: HtmxHttpRequest, creator: CreatorCheck | None) -> tuple[PostMedia | None, str]:
    """The video of a composer submission: a file sent with the form (no JavaScript), else the
    one uploaded earlier (media_id). Returns (media, error message)."""
    user = _user(request)
    previous: PostMedia | None = None
    media_id = _uuid(request.POST.get("media_id")) if request.POST.get("media_id") else None
    error = ""
    if media_id is not None:
        try:
            previous = get_media_for_user(user, media_id)
        except Http404:
            error = MEDIA_GONE
    upload = request.FILES.get("video")
    handler = upload_handler(request)
    if handler is not None and handler.refusal:
        return previous, REFUSALS[handler.refusal]
    if not isinstance(upload, StoredUpload):
        reused = _library_video(request)
        return (reused, "") if reused is not None else (previous, error)
    try:
        return _upload(request, upload, creator), ""
    except MediaError as exc:
        return previous, str(exc)


def _library_video(request: HtmxHttpRequest) -> PostMedia | None:
    """The video chosen from the media library (`library_item`), as a new media row of this
    person's naming the library's stored object; None when none was chosen."""
    item_id = _uuid(request.POST.get("library_item"))
    if item_id is None:
        return None
    item = get_item_for_user(_user(request), item_id)
    if item.kind != LibraryKind.VIDEO:
        raise Http404("No such video in the media library.")
    return media_from_library(item=item, by=_user(request))


def _library_photos(request: HtmxHttpRequest, photos: list[PostMedia]) -> None:
    """Add the images chosen from the media library (`library_photos`) at the end of `photos`."""
    for value in request.POST.getlist("library_photos")[:MAX_PHOTOS]:
        item_id = _uuid(value)
        if item_id is None or len(photos) >= MAX_PHOTOS:
            continue
        try:
            item = get_item_for_user(_user(request), item_id)
            if item.kind != LibraryKind.IMAGE:
                raise Http404("No such image in the media library.")
        except Http404:
            discard_uploads(request)  # nothing sent with this request stays
            raise
        photos.append(media_from_library(item=item, by=_user(request)))


def _upload(request: HtmxHttpRequest, upload: StoredUpload, creator: CreatorCheck | None) -> PostMedia:
    max_seconds = creator.info.max_video_post_duration_sec if creator and creator.info else None
    return media_upload(file=upload, by=_user(request), max_duration_seconds=max_seconds, request=request)


def _may_upload(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> None:
    """Only owners, admins and people who may draft for some account send a video: the gate of
    every view that receives one, checked before a byte of it is read."""
    user = _user(request)
    if request.method == "POST" and not (
        holds_every_account(user) or accounts_with(user, Perm.DRAFT).exists()
    ):
        raise Http404("No account to upload for.")


def _may_edit(request: HtmxHttpRequest, pk: uuid.UUID) -> None:
    get_post_for_user(_user(request), pk, Perm.DRAFT)


def _receives_video(gate: Any, *, photos: bool = False) -> Any:
    """For views that receive a video: streamed to storage, at most TikTok's 4 GB, read only
    once the person is signed in and passed `gate` (apps.media.uploads.streams_upload); with
    `photos`, also a photo post's photos sent with the form (the composer without JavaScript)."""
    return streams_upload(
        field="video",
        name_for=video_name_for,
        max_bytes=_max_video_bytes,
        gate=gate,
        also=[_PHOTOS_FIELD] if photos else [],
    )


def _max_photo_bytes() -> int:
    return MAX_PHOTO_BYTES


def _library_name_for(head: bytes) -> str | None:
    """The storage name of a library upload: a video or a photo TikTok takes, by its content."""
    return video_name_for(head) or photo_name_for(head)


def _library_max_bytes() -> int:
    """A library upload stops once it passes what the agency's plan has left (nothing more of it
    is read or stored)."""
    most = _max_video_bytes()
    left = storage_use().left
    return most if left is None else min(most, left)


def _may_use_library(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> None:
    if not may_use_library(_user(request)):
        raise Http404("No media library for this person.")


LIBRARY_REFUSALS = {
    TOO_LARGE: "The file is larger than TikTok's limit of 4 GB.",
    NOT_ACCEPTED: (
        "This file is not a video (MP4, MOV or WebM) or an image (JPEG or WebP) that TikTok takes. "
        "We check what the file contains, not its name."
    ),
    EMPTY: "The file is empty. Choose it again.",
}


_PHOTOS_FIELD = AlsoUpload(
    field="photo", name_for=photo_name_for, max_bytes=_max_photo_bytes, many=MAX_PHOTOS
)


def _max_video_bytes() -> int:
    return min(settings.MEDIA_UPLOAD_MAX_BYTES, MAX_VIDEO_BYTES)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@_receives_video(_may_upload, photos=True)
def post_compose(request: HtmxHttpRequest) -> HttpResponse:
    return _compose(request, None)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@_receives_video(_may_edit, photos=True)
def post_edit(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk, Perm.DRAFT)
    if post.status not in EDITABLE_STATUSES:
        messages.error(
            request, f"This post is {post.get_status_display().lower()} and can no longer be edited."
        )
        return redirect("posts:detail", pk=post.pk)
    return _compose(request, post)


@require_GET
@login_required
def creator_info(request: HtmxHttpRequest) -> HttpResponse:
    """The creator fragment for ?account=: asks TikTok now, every time (the audit's rule)."""
    user = _user(request)
    account_id = _uuid(request.GET.get("account"))
    creator = None
    if account_id is not None:
        account = account_for_user(user, account_id, Perm.DRAFT)
        creator = creator_check(account=account)
    form = ComposeForm(
        initial=compose_initial(user=user, account=creator.account if creator else None), user=user
    )
    return render(
        request, "posts/compose.html#creator", {"form": form, **_creator_context(form, creator, user)}
    )


@require_POST
@login_required
@_receives_video(_may_upload)
def media_upload_view(request: HtmxHttpRequest) -> HttpResponse:
    """Upload one video (the composer's JavaScript sends it with a progress bar); answers the
    media fragment: the video's summary and hidden media_id, or the error next to the field.
    Only for owners, admins and people who may draft for some account: nobody else has a use
    for an upload."""
    upload = request.FILES.get("video")
    handler = upload_handler(request)
    account = _account_from(request, request.POST.get("account"))
    media: PostMedia | None = None
    error = "Choose a video file to upload."
    if handler is not None and handler.refusal:
        error = REFUSALS[handler.refusal]
    elif isinstance(upload, StoredUpload):
        creator = creator_check(account=account) if account is not None else None
        try:
            media = _upload(request, upload, creator)
            error = ""
        except MediaError as exc:
            error = str(exc)
    return render(
        request,
        "posts/compose.html#media",
        {"media": media, "video_errors": [error] if error else []},
        status=400 if error else 201,
    )


@require_POST
@login_required
@streams_upload(
    field="file",
    name_for=_library_name_for,
    max_bytes=_library_max_bytes,
    body_bytes=_max_video_bytes,
    gate=_may_use_library,
)
def library_upload(request: HtmxHttpRequest) -> HttpResponse:
    """Upload a video or an image to the media library (its page's form): checked as the
    composer checks it (what TikTok takes), refused past the plan's storage, then back to the
    library with what happened."""
    upload = request.FILES.get("file")
    handler = upload_handler(request, "file")
    error = "Choose a video or an image to upload."
    if handler is not None and handler.refusal:
        use = storage_use()
        full = handler.refusal == TOO_LARGE and use.left is not None and use.left < _max_video_bytes()
        error = storage_full_message(size=None, use=use) if full else LIBRARY_REFUSALS[handler.refusal]
    elif isinstance(upload, StoredUpload):
        try:
            if sniff_photo_type(upload.read(16)):
                if (upload.size or 0) > MAX_PHOTO_BYTES:
                    upload.discard()
                    raise MediaError(PHOTO_REFUSALS[TOO_LARGE].format(which="The image"))
                media = photo_upload(file=upload, by=_user(request), request=request, which="The image")
            else:
                media = media_upload(file=upload, by=_user(request), request=request)
        except MediaError as exc:
            error = str(exc)
        else:
            messages.success(request, f"{media.original_name or 'The file'} is in the media library.")
            return redirect("media:library")
    messages.error(request, error)
    return redirect("media:library")


def _carousel(request: HtmxHttpRequest, photos: list[PostMedia], errors: list[str]) -> HttpResponse:
    """The carousel fragment, with the preview's photos out of band; 200 even with refusals
    (the carousel, with them in it, replaces the one on the page)."""
    return render(
        request,
        "posts/compose.html#photos",
        {
            "photos": photos,
            "photo_errors": errors,
            "cover_id": _cover_id(photos, request.POST.get("photo_cover")),
            "oob": True,
        },
    )


@require_POST
@login_required
@streams_upload(
    field="photo", name_for=photo_name_for, max_bytes=_max_photo_bytes, many=MAX_PHOTOS, gate=_may_upload
)
def photo_upload_view(request: HtmxHttpRequest) -> HttpResponse:
    """Add one or more photos at the end of the composer's carousel (htmx): answers the carousel
    with those TikTok takes, and why each other one was refused (its place and file name)."""
    photos = _photos_in_carousel(request)
    handler = upload_handler(request, "photo")
    errors = _photos_added(request, photos) if handler is not None and handler.received else [NO_PHOTO_CHOSEN]
    return _carousel(request, photos, errors)


@require_POST
@login_required
def photo_carousel(request: HtmxHttpRequest) -> HttpResponse:
    """Reorder or remove a photo of the composer's carousel (htmx; without JavaScript the same
    buttons send the whole form to the composer). Nothing is saved until the post is."""
    photos, _ = _carousel_edited(request, _photos_from(request))
    return _carousel(request, photos, [])


@require_GET
@login_required
def media_file(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponseBase:
    """The video itself, for the preview player, to whoever may see it: a redirect to a
    presigned URL valid a few minutes (never a public one), or streamed from disk."""
    media = get_media_for_user(_user(request), pk)
    storage, name = media_storage(), str(media.file.name)
    url = storage.browser_url(name, content_type=media.mime_type)
    if url is not None:
        if not storage.exists(name):
            raise Http404("The video file is missing.")
        response: HttpResponse = redirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    try:
        handle = media.file.open("rb")
    except FileNotFoundError:
        raise Http404("The video file is missing.") from None
    streamed = FileResponse(handle, content_type=media.mime_type)
    streamed["Cache-Control"] = "private, max-age=3600"
    return streamed


# --- Photos for TikTok (root domain) ---


@require_GET
def tiktok_photo(request: HtmxHttpRequest, token: str) -> HttpResponseBase:
    """One photo of a post being published, for TikTok to download (content/init PULL_FROM_URL):
    the exact stored bytes, never a redirect. The signed, expiring token is the gate (TikTok has
    no session): it names the agency and the photo; anything else, an expired token, another
    agency's or a post not being published answers 404."""
    found = photo_token_read(token)
    if found is None:
        raise Http404("No such photo.")
    schema_name, media_id = found
    if not Agency.objects.filter(schema_name=schema_name, status=AgencyStatus.ACTIVE).exists():
        raise Http404("No such photo.")
    with schema_context(schema_name):
        media = PostMedia.objects.filter(
            pk=media_id,
            kind=MediaKind.PHOTO,
            post__status__in=(PostStatus.PUBLISHING, PostStatus.PROCESSING),
            post__deleted_at__isnull=True,
        ).first()
        if media is None or not media_storage().exists(str(media.file.name)):
            raise Http404("No such photo.")
    name, size = str(media.file.name), media.size_bytes

    def body() -> Iterator[bytes]:
        with schema_context(schema_name):  # the storage reads under the agency's prefix
            yield from media_storage().iter_range(name, 0, size - 1)

    response = StreamingHttpResponse(body(), content_type=media.mime_type)
    response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- The post's page ---


def _polling(post: Post, now: dt.datetime) -> bool:
    """Whether the status may change any second: about to be claimed, publishing, processing,
    or published while TikTok's public id is still to come."""
    if post.status in (PostStatus.PUBLISHING, PostStatus.PROCESSING):
        return True
    if post.status == PostStatus.SCHEDULED:
        return post.scheduled_at is not None and post.scheduled_at <= now + POLL_BEFORE_DUE
    if post.status == PostStatus.PUBLISHED:
        return (
            not post.published_post_id
            and post.mode == PublishMode.DIRECT
            and post.published_at is not None
            and post.published_at > now - POLL_GIVE_UP_AFTER
        )
    return False


def _wake_up_in(post: Post, now: dt.datetime) -> int | None:
    """Seconds until a scheduled post enters the polling window (one refresh then), if soon."""
    if post.status != PostStatus.SCHEDULED or post.scheduled_at is None:
        return None
    start = post.scheduled_at - POLL_BEFORE_DUE
    if now < start <= now + WAKE_UP_WITHIN:
        return int((start - now).total_seconds()) + 1
    return None


def _detail_context(request: HtmxHttpRequest, post: Post, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    user = _user(request)
    perms = account_perms(user, post.account)
    drafts = Perm.DRAFT in perms
    sends = may_publish_directly(perms, post.account)
    context: dict[str, Any] = {
        "post": post,
        "attempts": list(attempts_for_user(user, post)),
        "polling": _polling(post, now),
        "wake_up_in": _wake_up_in(post, now),
        "user_time_zone": user.time_zone or "UTC",
        "may_cancel": drafts and post.status in CANCELLABLE_STATUSES,
        "may_reschedule": drafts and post.status in RESCHEDULABLE_STATUSES,
        "may_edit": drafts and post.status in EDITABLE_STATUSES,
        "may_retry": sends and post.status in (PostStatus.FAILED, PostStatus.NEEDS_ATTENTION),
        "may_mark_published": sends and post.status == PostStatus.NEEDS_ATTENTION,
        "may_review": Perm.APPROVE in perms
        and post.status == PostStatus.PENDING_APPROVAL
        and not is_own_work(user, post),
        "own_work_waits": Perm.APPROVE in perms
        and post.status == PostStatus.PENDING_APPROVAL
        and is_own_work(user, post),
        "own_work": OWN_WORK,
        # "Approved by" only for the version that was approved.
        "approval_current": approval_is_current(post),
        "needs_approval": drafts and not sends,
        "draft_problems": post_draft_problems(post) if post.status == PostStatus.DRAFT else [],
        **extra,
    }
    context.setdefault("reschedule_form", _reschedule_form(post, user))
    context.setdefault("review_form", None)
    return context


def _reschedule_form(post: Post, user: User) -> RescheduleForm:
    initial = compose_initial(user=user, post=post)
    return RescheduleForm(
        initial={key: initial.get(key) for key in ("scheduled_date", "scheduled_time", "time_zone")}
    )


@require_GET
@login_required
@vary_on_headers("HX-Request")
def post_detail(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk)
    if request.htmx and not request.htmx.history_restore_request:
        # The status, and the attempt history swapped out of band (it sits lower on the page).
        return render(request, "posts/detail.html#status", _detail_context(request, post, oob=True))
    context = _detail_context(request, post, media=post_video(post), photos=post_photos(post))
    return render(request, "posts/detail.html", context)


@require_POST
@login_required
def post_cancel_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk, Perm.DRAFT)
    try:
        post_cancel(post=post, by=_user(request), request=request)
    except PostStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Cancelled. Nothing will be sent to TikTok.")
    return redirect("posts:detail", pk=post.pk)


@require_POST
@login_required
def post_retry_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk, PUBLISH_DIRECTLY)
    try:
        post_retry(post=post, by=_user(request), request=request)
    except PostStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Publishing again now. This page shows how it goes.")
    return redirect("posts:detail", pk=post.pk)


@require_POST
@login_required
def post_mark_published_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk, PUBLISH_DIRECTLY)
    form = MarkPublishedForm(request.POST)
    form.is_valid()
    try:
        post_mark_published(
            post=post,
            published_post_id=form.cleaned_data.get("published_post_id") or "",
            by=_user(request),
            request=request,
        )
    except PostStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Marked as published.")
    return redirect("posts:detail", pk=post.pk)


@require_POST
@login_required
def post_reschedule_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    user = _user(request)
    post = get_post_for_user(user, pk, Perm.DRAFT)
    form = RescheduleForm(request.POST)
    if not form.is_valid() or form.when is None:
        return render(
            request,
            "posts/detail.html",
            _detail_context(request, post, media=post_video(post), reschedule_form=form),
        )
    try:
        post = post_schedule(
            post=post,
            scheduled_at=form.when,
            time_zone=form.cleaned_data["time_zone"],
            by=user,
            request=request,
            only_from=RESCHEDULABLE_STATUSES,
        )
    except PostStateError as exc:
        messages.error(request, str(exc))
    else:
        if post.status == PostStatus.PENDING_APPROVAL:
            messages.success(request, "Rescheduled and sent for approval again.")
        else:
            messages.success(request, "Rescheduled.")
    return redirect("posts:detail", pk=post.pk)


# --- Approvals ---


@dataclass(frozen=True)
class ReviewFormState:
    """A rejection that was refused: which post, what was typed, why (next to the comment), and
    the banner at the top of the page that says which post was not rejected."""

    post_id: uuid.UUID
    comment: str
    error: str
    summary: str


def _approvals_next(request: HtmxHttpRequest) -> str:
    """Where a decision taken on the queue comes back to: the page of it being read (also when
    a refused rejection shows the queue again from its form's own address)."""
    path = reverse("posts:approvals")
    if request.method == "GET":
        query = request.GET.urlencode()
        return f"{path}?{query}" if query else path
    target = request.POST.get("next", "")
    return target if target.startswith(path) else path


def _approvals_context(request: HtmxHttpRequest, **extra: Any) -> dict[str, Any]:
    user = _user(request)
    waiting = posts_awaiting_review(user)
    page = keyset_page(
        waiting.only(*APPROVALS_FIELDS).prefetch_related(
            Prefetch(
                "media",
                queryset=PostMedia.objects.only("id", "post_id", "kind", "position").order_by("position"),
                to_attr="media_items",
            )
        ),
        APPROVALS_ORDER,
        request.GET,
        size=APPROVALS_PAGE_SIZE,
    )
    for post in page.rows:  # what {% review_items %} shows of each: its video, or its photos in order
        post.videos = [item for item in post.media_items if item.kind == MediaKind.VIDEO]
        post.photo_list = [item for item in post.media_items if item.kind == MediaKind.PHOTO]
    # The whole queue's size: only posts waiting for this person, never a large table's count.
    waiting_count = len(page.rows) if not page.has_other_pages else waiting.count()
    return {
        "page": page,
        "posts": page.rows,
        "approvals_next": _approvals_next(request),
        "waiting_count": waiting_count,
        "time_zone": user.time_zone or "UTC",
        "review_form": None,
        **extra,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def approvals(request: HtmxHttpRequest) -> HttpResponse:
    """What waits for this user's decision: posts for the accounts they may approve."""
    if request.htmx and not request.htmx.history_restore_request:  # the pager's links
        return render(request, "posts/approvals.html#queue", _approvals_context(request))
    return render(request, "posts/approvals.html", _approvals_context(request))


def _back_to(request: HtmxHttpRequest, post: Post) -> HttpResponse:
    """Back where the review form was (the approvals queue or the post), never off this site."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("posts:detail", pk=post.pk)


@require_POST
@login_required
def post_approve_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    post = get_post_for_user(_user(request), pk, Perm.APPROVE)
    try:
        seen: dt.datetime | None = dt.datetime.fromisoformat(request.POST.get("seen", ""))
    except ValueError:
        seen = None  # a form from before this field, or tampered with: treated as out of date
    try:
        post_approve(post=post, by=_user(request), seen=seen, request=request)
    except PostStateError as exc:
        messages.error(request, f"“{post}” was not approved: {exc}")
    else:
        messages.success(request, f"Approved “{post}”. It is scheduled and its author can see your decision.")
    return _back_to(request, post)


@require_POST
@login_required
def post_reject_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    user = _user(request)
    post = get_post_for_user(user, pk, Perm.APPROVE)
    comment = request.POST.get("comment", "")
    try:
        post_reject(post=post, comment=comment, by=user, request=request)
    except PostValidationError as exc:
        error = " ".join(exc.errors.values())
        state = ReviewFormState(
            post_id=post.pk,
            comment=comment,
            error=error,
            summary=f"“{post}” was not rejected: {error[:1].lower()}{error[1:]}",
        )
        if request.POST.get("next") == reverse("posts:approvals"):
            return render(request, "posts/approvals.html", _approvals_context(request, review_form=state))
        context = _detail_context(request, post, media=post_video(post), review_form=state)
        return render(request, "posts/detail.html", context)
    except PostStateError as exc:
        messages.error(request, f"“{post}” was not rejected: {exc}")
    else:
        messages.success(
            request, f"Rejected “{post}”. It went back to its author as a draft with your comment."
        )
    return _back_to(request, post)
