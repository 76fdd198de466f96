"""The public API, version 1, on each agency's subdomain under /api/v1/ (django-ninja).

Every request carries an API key (apps.api.middleware); the key acts as its service member,
so every endpoint reads and writes through the same gates and services as the pages
(`accounts_with`, `get_post_for_user`, `post_save`, ...) and answers 404 for what the key may
not see. Errors have one shape (apps.api.errors)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyHeader
from pydantic import Field

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, accounts_with, get_account_for_user, holds_every_account
from apps.analytics.models import AccountSnapshot
from apps.api import schemas as s
from apps.api import uploads
from apps.api.errors import error_response
from apps.api.models import MediaUpload
from apps.audit.models import AuditLog
from apps.posts.models import Post, PostMedia, PostStatus
from apps.posts.selectors import (
    PUBLISH_DIRECTLY,
    get_media_for_user,
    get_post_for_user,
    posts_awaiting_review,
)
from apps.posts.services import (
    CONTENT_FIELDS,
    PostConflictError,
    PostContent,
    PostStateError,
    PostValidationError,
    post_approve,
    post_cancel,
    post_mark_published,
    post_reject,
    post_retry,
    post_save,
    post_schedule,
)
from apps.users.models import validate_time_zone

PAGE_DEFAULT, PAGE_MAX = 50, 200
logger = logging.getLogger(__name__)


class KeyAuth(APIKeyHeader):
    """The key itself is checked by ApiKeyMiddleware (before idempotent replays); this tells
    ninja, and the OpenAPI schema, that every endpoint needs it."""

    param_name = "Authorization"
    openapi_type = "http"
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return getattr(request, "api_key", None)

    def __call__(self, request: HttpRequest) -> Any:
        return getattr(request, "api_key", None)


class PostlineAPI(NinjaAPI):
    """NinjaAPI whose upload URL takes chunk-sized bodies (RequestBodyLimitMiddleware reads a
    view's `request_body_limit`; every other URL keeps REQUEST_BODY_MAX_BYTES)."""

    def _get_urls(self) -> list[Any]:
        urls = super()._get_urls()
        for pattern in urls:
            if str(getattr(pattern, "pattern", "")).startswith(UPLOAD_ROUTE):
                pattern.callback.request_body_limit = uploads.chunk_body_limit  # type: ignore[union-attr]
        return urls


UPLOAD_ROUTE = "media/uploads/<"

api = PostlineAPI(
    title="Postline API",
    version="1",
    description=(
        "Schedule and publish TikTok posts for the accounts your key may use. Send the key as "
        "`Authorization: Bearer pl_…`; send `Idempotency-Key` with every POST to retry safely. "
        'Errors: `{"error": {"code", "message", "fields"}}`.'
    ),
    auth=KeyAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


# --- Errors: one shape ---


@api.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields: dict[str, str] = {}
    for item in exc.errors:
        location = [
            str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "payload")
        ]
        fields[".".join(location) or "request"] = str(item.get("msg", "is not valid"))
    return error_response(422, "invalid_request", "The request is not valid: see `fields`.", fields=fields)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(401, "unauthenticated", "Send a valid API key: `Authorization: Bearer pl_…`.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", "Nothing here, or nothing this key may see.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(403, "forbidden", str(exc) or "This key may not do that.")


@api.exception_handler(PostValidationError)
def _refused(request: HttpRequest, exc: PostValidationError) -> HttpResponse:
    return error_response(422, "invalid_post", "The post breaks a rule: see `fields`.", fields=exc.errors)


@api.exception_handler(PostConflictError)
def _changed(request: HttpRequest, exc: PostConflictError) -> HttpResponse:
    changed = f" ({', '.join(exc.changed)})" if exc.changed else ""
    return error_response(
        409,
        "post_changed",
        f"{exc.by} saved the post at {exc.at.isoformat()}{changed} after the version you sent: "
        f"read it again (its version is now {exc.version.isoformat()}) and send your change with that.",
    )


@api.exception_handler(PostStateError)
def _conflict(request: HttpRequest, exc: PostStateError) -> HttpResponse:
    return error_response(409, "post_state", str(exc))


@api.exception_handler(uploads.UploadError)
def _upload_refused(request: HttpRequest, exc: uploads.UploadError) -> HttpResponse:
    headers = {"Upload-Offset": str(exc.offset)} if exc.offset is not None else {}
    extra: dict[str, object] = {"offset": exc.offset} if exc.offset is not None else {}
    return error_response(exc.status, exc.code, str(exc), headers=headers, extra=extra)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, "invalid_request", str(exc))


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged with its traceback; nothing of it is sent back.
    logger.exception("API request failed: %s %s", request.method, request.path)
    return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")


def _user(request: HttpRequest) -> Any:
    return request.user


# --- Cursors: keyset pagination that loses nothing when rows are added meanwhile ---


def _cursor_encode(created_at: dt.datetime, pk: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, pk = raw.partition("|")
        created = dt.datetime.fromisoformat(when)
        if created.tzinfo is None:
            raise ValueError
        return created, uuid.UUID(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HttpError(400, "The cursor is not one this API gave: start again without it.") from None


def _page(queryset: Any, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """Newest first by (created_at, id); `cursor` names the last row of the page before."""
    queryset = queryset.order_by("-created_at", "-id")
    if cursor:
        created, pk = _cursor_decode(cursor)
        queryset = queryset.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=pk))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor_encode(rows[-1].created_at, rows[-1].pk) if more and rows else None)


# --- Accounts ---

accounts = Router(tags=["accounts"])


def _account_out(account: TikTokAccount) -> dict[str, Any]:
    return {
        **{field: getattr(account, field) for field in s.AccountOut.model_fields if hasattr(account, field)},
        "token_status": str(account.token_status()),
        "missing_analytics_scopes": [scope for scope, _why in account.missing_analytics],
    }


@accounts.get("", response=list[s.AccountOut], summary="The accounts this key may see")
def accounts_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [_account_out(account) for account in accounts_with(_user(request))]


@accounts.get("/{account_id}", response=s.AccountOut, summary="One account: health and granted scopes")
def account_detail(request: HttpRequest, account_id: uuid.UUID) -> dict[str, Any]:
    return _account_out(get_account_for_user(_user(request), account_id))


@accounts.get(
    "/{account_id}/snapshots", response=list[s.SnapshotOut], summary="Daily analytics snapshots, newest first"
)
def account_snapshots(
    request: HttpRequest, account_id: uuid.UUID, since: dt.date | None = None, until: dt.date | None = None
) -> Any:
    account = get_account_for_user(_user(request), account_id)
    snapshots = AccountSnapshot.objects.filter(account=account).order_by("-date")
    if since is not None:
        snapshots = snapshots.filter(date__gte=since)
    if until is not None:
        snapshots = snapshots.filter(date__lte=until)
    return snapshots[:1000]


# --- Posts ---

posts = Router(tags=["posts"])


class PostFilters(Schema):
    status: PostStatus | None = None
    account_id: uuid.UUID | None = None
    cursor: str | None = None
    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MAX)


@posts.get("", response=s.PostPage, summary="Posts, newest first, a page at a time")
def posts_list(request: HttpRequest, filters: Query[PostFilters]) -> dict[str, Any]:
    queryset = Post.objects.visible_to(_user(request))
    if filters.status is not None:
        queryset = queryset.filter(status=filters.status)
    if filters.account_id is not None:
        queryset = queryset.filter(account_id=filters.account_id)
    rows, next_cursor = _page(queryset, filters.cursor, filters.limit)
    return {"items": rows, "next_cursor": next_cursor}


@posts.get("/{post_id}", response=s.PostOut, summary="One post")
def post_detail(request: HttpRequest, post_id: uuid.UUID) -> Post:
    return get_post_for_user(_user(request), post_id)


def _media(request: HttpRequest, media_id: uuid.UUID | None) -> PostMedia | None:
    return get_media_for_user(_user(request), media_id) if media_id is not None else None


def _time_zone(value: str) -> str:
    try:
        validate_time_zone(value)
    except ValidationError as exc:
        raise PostValidationError({"time_zone": exc.messages[0]}) from None
    return value


@posts.post("", response={201: s.PostOut}, summary="Create a draft")
def post_create(request: HttpRequest, body: s.PostIn) -> Status[Post]:
    user = _user(request)
    account = accounts_with(user, Perm.DRAFT).filter(pk=body.account_id).first()
    if account is None:
        raise Http404
    if body.scheduled_at is not None and body.scheduled_at.tzinfo is None:
        raise PostValidationError(
            {"scheduled_at": "Give the time with its offset, as in 2026-12-24T18:00:00+01:00."}
        )
    values = body.dict(include=set(CONTENT_FIELDS))
    content = PostContent(account=account, **values)
    post = post_save(
        post=None,
        content=content,
        media=_media(request, body.media_id),
        by=user,
        scheduled_at=body.scheduled_at,
        time_zone=_time_zone(body.time_zone or user.time_zone or "UTC"),
        request=request,
    )
    return Status(201, post)


@posts.patch("/{post_id}", response=s.PostOut, summary="Change a draft (scheduled posts go back to draft)")
def post_update(request: HttpRequest, post_id: uuid.UUID, body: s.PostPatch) -> Post:
    user = _user(request)
    post = get_post_for_user(user, post_id, Perm.DRAFT)
    changes = body.dict(exclude_unset=True, exclude={"media_id", "version"})
    values = {field: getattr(post, field) for field in CONTENT_FIELDS}
    values.update({field: value for field, value in changes.items() if value is not None})
    content = PostContent(account=post.account, **values)
    return post_save(
        post=post,
        content=content,
        media=_media(request, body.media_id),
        by=user,
        scheduled_at=post.scheduled_at,
        time_zone=post.schedule_time_zone or user.time_zone or "UTC",
        request=request,
        seen=_version(body.version) if body.version is not None else None,
    )


def _version(raw: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(raw)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)  # not a version this API gave: out of date


@posts.post("/{post_id}/schedule", response=s.PostOut, summary="Schedule (or submit for approval)")
def post_schedule_endpoint(request: HttpRequest, post_id: uuid.UUID, body: s.ScheduleIn) -> Post:
    user = _user(request)
    post = get_post_for_user(user, post_id, Perm.DRAFT)
    if body.scheduled_at.tzinfo is None:
        raise PostValidationError(
            {"scheduled_at": "Give the time with its offset, as in 2026-12-24T18:00:00+01:00."}
        )
    return post_schedule(
        post=post,
        scheduled_at=body.scheduled_at,
        time_zone=_time_zone(body.time_zone),
        by=user,
        request=request,
    )


@posts.post("/{post_id}/cancel", response=s.PostOut, summary="Take a post off the schedule")
def post_cancel_endpoint(request: HttpRequest, post_id: uuid.UUID) -> Post:
    post = get_post_for_user(_user(request), post_id, Perm.DRAFT)
    return post_cancel(post=post, by=_user(request), request=request)


@posts.post("/{post_id}/retry", response=s.PostOut, summary="Try a failed post again")
def post_retry_endpoint(request: HttpRequest, post_id: uuid.UUID) -> Post:
    post = get_post_for_user(_user(request), post_id, PUBLISH_DIRECTLY)
    return post_retry(post=post, by=_user(request), request=request)


@posts.post("/{post_id}/mark-published", response=s.PostOut, summary="Say a post is live on TikTok")
def post_mark_published_endpoint(request: HttpRequest, post_id: uuid.UUID, body: s.MarkPublishedIn) -> Post:
    post = get_post_for_user(_user(request), post_id, PUBLISH_DIRECTLY)
    return post_mark_published(
        post=post, published_post_id=body.published_post_id, by=_user(request), request=request
    )


# --- Approvals ---

approvals = Router(tags=["approvals"])


@approvals.get("", response=list[s.PostOut], summary="Posts waiting for this key's decision")
def approvals_list(request: HttpRequest) -> Any:
    return list(posts_awaiting_review(_user(request))[:PAGE_MAX])


@approvals.post("/{post_id}/approve", response=s.PostOut, summary="Approve the version you reviewed")
def approval_approve(request: HttpRequest, post_id: uuid.UUID, body: s.ApproveIn) -> Post:
    post = get_post_for_user(_user(request), post_id, Perm.APPROVE)
    try:
        seen: dt.datetime | None = dt.datetime.fromisoformat(body.version)
    except ValueError:
        seen = None  # not a version this API gave: treated as out of date
    return post_approve(post=post, by=_user(request), seen=seen, request=request)


@approvals.post("/{post_id}/reject", response=s.PostOut, summary="Reject, saying why")
def approval_reject(request: HttpRequest, post_id: uuid.UUID, body: s.RejectIn) -> Post:
    post = get_post_for_user(_user(request), post_id, Perm.APPROVE)
    return post_reject(post=post, comment=body.comment, by=_user(request), request=request)


# --- Audit (admin keys) ---

audit = Router(tags=["audit"])


@audit.get("", response=s.AuditPage, summary="Audit entries, newest first (admin keys)")
def audit_list(
    request: HttpRequest, cursor: str | None = None, limit: int = Query(PAGE_DEFAULT, ge=1, le=PAGE_MAX)
) -> dict[str, Any]:
    if not holds_every_account(_user(request)):
        raise Http404
    rows, next_cursor = _page(AuditLog.objects.all(), cursor, limit)
    return {"items": rows, "next_cursor": next_cursor}


# --- Media: resumable uploads, and reading a video's facts ---

media = Router(tags=["media"])

UPLOAD_FLOW = (
    "A video of up to 4 GB is sent in chunks, each a request of its own, so that a broken "
    "connection costs one chunk: (1) `POST /media/uploads` with its `filename`, `content_type` "
    "(video/mp4, video/quicktime or video/webm) and `size`; (2) `PUT /media/uploads/{id}` each "
    "chunk in order, its bytes as the body (any Content-Type), with `Content-Range: bytes "
    "FIRST-LAST/TOTAL` and its exact Content-Length. FIRST must be the upload's `offset` "
    "(else 409 `offset_mismatch`, the error's `offset` saying where to go on from); every chunk "
    "but the last must be a multiple of `chunk_size` bytes (S3 multipart parts are at least 5 MiB, "
    "all of one size but the last) and none more than `max_chunk_size`. (3) The answer to the last "
    "chunk, once the video is checked as the composer checks it (type by content, duration, frame "
    "size, codec, SHA-256), has `state` `complete` and its `media_id`, for `POST /posts`; a file "
    "that fails the check is deleted and answered 422 `invalid_media` (or `not_a_video` at its first "
    "chunk). After a lost connection, `GET /media/uploads/{id}` says the `offset` to resume from. "
    "An upload not complete within 24 hours is abandoned and its parts deleted."
)


def _upload_out(upload: MediaUpload) -> dict[str, Any]:
    return {
        "id": upload.pk,
        "state": upload.state,
        "filename": upload.filename,
        "content_type": upload.content_type,
        "size": upload.size,
        "offset": upload.offset,
        "chunk_size": upload.part_bytes,
        "max_chunk_size": upload.part_bytes * uploads.chunk_parts(),
        "expires_at": uploads.upload_expires_at(upload),
        "media_id": upload.media_id,
        "error": upload.error,
    }


@media.post(
    "/uploads",
    response={201: s.UploadOut},
    summary="Start a resumable video upload",
    description=UPLOAD_FLOW,
)
def media_upload_start(request: HttpRequest, body: s.UploadIn) -> Status[dict[str, Any]]:
    upload = uploads.upload_start(
        user=_user(request),
        filename=body.filename,
        content_type=body.content_type,
        size=body.size,
        account_id=body.account_id,
    )
    return Status(201, _upload_out(upload))


@media.get("/uploads/{upload_id}", response=s.UploadOut, summary="Where an upload is: its offset and state")
def media_upload_detail(request: HttpRequest, upload_id: uuid.UUID) -> dict[str, Any]:
    return _upload_out(uploads.upload_for_user(_user(request), upload_id))


@media.put(
    "/uploads/{upload_id}",
    response=s.UploadOut,
    summary="Send the next chunk of an upload",
    description=UPLOAD_FLOW,
    openapi_extra={
        "parameters": [
            {
                "name": "Content-Range",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": r"^bytes \d+-\d+/\d+$"},
                "description": "The chunk's place in the file: `bytes FIRST-LAST/TOTAL` (LAST included).",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
def media_upload_chunk(request: HttpRequest, upload_id: uuid.UUID) -> dict[str, Any]:
    upload = uploads.upload_for_user(_user(request), upload_id)
    received = uploads.upload_receive(
        upload=upload,
        stream=request,
        content_range=request.headers.get("Content-Range", ""),
        content_length=request.META.get("CONTENT_LENGTH"),
        request=request,
    )
    return _upload_out(received)


@media.get("/{media_id}", response=s.MediaOut, summary="A video's (or photo's) facts")
def media_detail(request: HttpRequest, media_id: uuid.UUID) -> PostMedia:
    return get_media_for_user(_user(request), media_id)


api.add_router("/accounts", accounts)
api.add_router("/posts", posts)
api.add_router("/approvals", approvals)
api.add_router("/audit", audit)
api.add_router("/media", media)
