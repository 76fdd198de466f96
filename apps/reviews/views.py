"""The links page (agency members), the client review page and the shared calendar (through a
link, without an account, or signed in as a client reviewer), and the consent record's export.

Pages reached through a link answer 404 for any token that does not open them (unknown,
altered, expired, revoked) and show only the posts the link covers."""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tenants.utils import schema_context

from apps.accounts.permissions import Perm
from apps.audit.services import audit_record
from apps.common.http import HtmxHttpRequest
from apps.media.storage import media_storage
from apps.posts.models import MediaType, Post, PostMedia
from apps.posts.selectors import get_post_for_user, post_content_hash, posts_awaiting_review
from apps.reviews.forms import DecisionForm, LinkForm
from apps.reviews.models import ClientLink, Decision, LinkKind
from apps.reviews.selectors import (
    REVIEWABLE_STATUSES,
    calendar_posts,
    clients_for,
    consent_for,
    get_client_for_user,
    get_link_for_user,
    get_link_media,
    get_link_post,
    link_for_token,
    link_posts,
    links_for,
    reviewable_posts,
    with_media,
)
from apps.reviews.services import ReviewError, client_link_create, client_link_revoke, review_decide
from apps.users.models import Role, User


def _user(request: HtmxHttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _private(response: HttpResponseBase) -> HttpResponseBase:
    """Pages opened by a secret link: never cached, never sent to another site as a referrer
    (same-origin, not no-referrer: browsers then send `Origin: null` with the page's forms,
    which CSRF checks refuse)."""
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "same-origin"
    return response


# --- The agency's links page ---


def _links_context(
    request: HtmxHttpRequest, label: str, *, forms: dict[str, LinkForm] | None = None, **extra: Any
) -> dict[str, Any]:
    user = _user(request)
    reviewable = reviewable_posts(user, label)
    forms = forms or {}
    return {
        "client": label,
        "clients": clients_for(user),
        "links": links_for(label),
        "review_form": forms.get(LinkKind.REVIEW) or LinkForm(kind=LinkKind.REVIEW, posts=reviewable),
        "calendar_form": forms.get(LinkKind.CALENDAR) or LinkForm(kind=LinkKind.CALENDAR),
        "may_export": user.is_agency_admin,
        "new_link": "",
        **extra,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def links(request: HtmxHttpRequest) -> HttpResponse:
    """Links for one client (`?client=`), and making new ones; without a client, the list of
    clients this person may send links for."""
    user = _user(request)
    label = request.GET.get("client", "")
    if not label:
        return render(request, "reviews/clients.html", {"clients": clients_for(user)})
    label = get_client_for_user(user, label)
    if request.method == "GET":
        return render(request, "reviews/links.html", _links_context(request, label))
    kind = request.POST.get("kind", "")
    if kind not in LinkKind.values:
        raise Http404("No such form.")
    form = LinkForm(
        request.POST, kind=kind, posts=reviewable_posts(user, label) if kind == LinkKind.REVIEW else None
    )
    if form.is_valid():
        try:
            link, raw = client_link_create(
                kind=kind,
                client_label=label,
                days=form.cleaned_data["days"],
                posts=form.cleaned_data.get("posts") or (),
                recipient=form.cleaned_data["recipient"],
                by=user,
                request=request,
            )
        except ReviewError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            name = "client:review" if kind == LinkKind.REVIEW else "client:calendar"
            url = request.build_absolute_uri(reverse(name, kwargs={"token": raw}))
            messages.success(
                request, f"{link.get_kind_display()} made. Copy it now: it is shown only this once."
            )
            # The only time the token is sent: in this answer, never stored, never in a redirect.
            return render(request, "reviews/links.html", _links_context(request, label, new_link=url))
    return render(request, "reviews/links.html", _links_context(request, label, forms={kind: form}))


@require_POST
@login_required
def link_revoke(request: HtmxHttpRequest, link_id: uuid.UUID) -> HttpResponse:
    link = get_link_for_user(_user(request), link_id)
    if client_link_revoke(link=link, by=_user(request), request=request):
        messages.success(request, f"{link.get_kind_display()} revoked: it opens nothing from now on.")
    else:
        messages.info(request, f"That {link.get_kind_display().lower()} was already revoked.")
    return redirect(f"{reverse('reviews:links')}?client={link.client_label}")


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): a client's
# comment is typed by anyone holding a link.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONSENT_COLUMNS = [
    "recorded_at",
    "client",
    "decision",
    "reviewer",
    "signed_in_as",
    "via_link",
    "ip",
    "user_agent",
    "post_id",
    "account",
    "scheduled_at",
    "comment",
    "content_hash",
    "content",
]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _consent_lines(schema_name: str, label: str) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The body is produced after the view has returned: enter the agency's schema again.
    with schema_context(schema_name):
        yield writer.writerow(CONSENT_COLUMNS)
        for record in consent_for(label).iterator(chunk_size=500):
            yield writer.writerow(
                [
                    _cell(value)
                    for value in (
                        record.created_at.astimezone(dt.UTC).isoformat(),
                        record.client_label,
                        record.decision,
                        record.reviewer_name,
                        record.user.email if record.user else "",
                        record.link_id or "",
                        record.ip,
                        record.user_agent,
                        record.post_id,
                        record.content.get("account_name", ""),
                        record.content.get("scheduled_at", ""),
                        record.comment,
                        record.content_hash,
                        json.dumps(record.content, sort_keys=True, ensure_ascii=False),
                    )
                ]
            )


@require_GET
@login_required
def consent_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """The client's consent record as CSV, for owners and admins: the evidence of each decision
    (who, when, from where, on exactly what). The export is itself audited."""
    user = _user(request)
    if not user.is_agency_admin:
        raise Http404("No such page.")
    label = get_client_for_user(user, request.GET.get("client", ""))
    audit_record(action="consent.exported", actor=user, request=request, changes={"client": label})
    agency = request.tenant  # type: ignore[attr-defined]
    response = StreamingHttpResponse(
        _consent_lines(agency.schema_name, label), content_type="text/csv; charset=utf-8"
    )
    safe = "".join(ch if ch.isalnum() else "-" for ch in label).strip("-") or "client"
    response["Content-Disposition"] = (
        f'attachment; filename="consent-{safe}-{timezone.localdate():%Y-%m-%d}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- The review page (through a link, or signed in) ---


@dataclass
class ReviewItem:
    """One post on the review page, with where its files and its decision go."""

    post: Post
    action: str
    seen: str
    video_url: str = ""
    photo_urls: list[str] = field(default_factory=list)
    error: str = ""
    error_field: str = ""
    comment: str = ""
    decision: str = ""
    decidable: bool = True


def _items(
    posts: list[Post], action: Any, media_url: Any, failed: dict[str, Any] | None = None
) -> list[ReviewItem]:
    items = []
    for post in posts:
        video = next(iter(getattr(post, "videos", [])), None)
        item = ReviewItem(
            post=post,
            action=action(post),
            seen=post_content_hash(post),
            decidable=post.status in REVIEWABLE_STATUSES,
            video_url=media_url(video) if video is not None and post.media_type == MediaType.VIDEO else "",
            photo_urls=[media_url(p) for p in getattr(post, "photo_list", [])]
            if post.media_type == MediaType.PHOTO
            else [],
        )
        if failed and failed.get("post_id") == post.pk:
            item.error, item.error_field = failed["error"], failed["field"]
            item.comment, item.decision = failed["comment"], failed["decision"]
        items.append(item)
    return items


def _review_page(
    request: HtmxHttpRequest,
    posts: list[Post],
    *,
    action: Any,
    media_url: Any,
    signed_in: bool,
    reviewer_name: str = "",
    failed: dict[str, Any] | None = None,
    status: int = 200,
    token: str = "",
) -> HttpResponseBase:
    context = {
        "token": token,
        "items": _items(posts, action, media_url, failed),
        "signed_in": signed_in,
        "reviewer_name": reviewer_name,
        "failed": failed,
        "decisions": Decision,
    }
    return _private(render(request, "reviews/review.html", context, status=status))


def _decide(
    request: HtmxHttpRequest, post: Post, *, link: ClientLink | None, user: User | None
) -> dict[str, Any] | None:
    """Apply the posted decision; the refusal (for the page to show, with what was typed) or None."""
    form = DecisionForm(request.POST)
    typed = {
        "post_id": post.pk,
        "comment": request.POST.get("comment", ""),
        "decision": request.POST.get("decision", ""),
        "reviewer_name": request.POST.get("reviewer_name", ""),
    }
    if not form.is_valid():
        problem = next(iter(form.errors.items()))
        return {**typed, "error": f"{problem[1][0]}", "field": problem[0]}
    data = form.cleaned_data
    try:
        record = review_decide(
            post=post,
            decision=data["decision"],
            seen_hash=data["seen"],
            reviewer_name=data["reviewer_name"],
            comment=data["comment"],
            link=link,
            user=user,
            request=request,
        )
    except ReviewError as exc:
        return {**typed, "error": str(exc), "field": exc.field}
    said = {
        Decision.APPROVED: "Approved: it will go out as shown, at its time.",
        Decision.REJECTED: "Rejected: the agency has your comment and will not publish it.",
        Decision.CHANGES_REQUESTED: "Sent back with your comment: the agency will change it and ask again.",
    }[Decision(record.decision)]
    messages.success(request, f"“{post}”: {said}")
    return None


def _link_media_url(token: str) -> Any:
    return lambda media: reverse("client:media", kwargs={"token": token, "media_id": media.pk})


def _link_action(token: str) -> Any:
    return lambda post: reverse("client:decide", kwargs={"token": token, "post_id": post.pk})


@require_GET
def client_review(request: HtmxHttpRequest, token: str) -> HttpResponseBase:
    """What the link covers, exactly as it will go to TikTok, with a decision for each."""
    link = link_for_token(token, LinkKind.REVIEW)
    posts = with_media(link_posts(link))
    return _review_page(
        request,
        posts,
        action=_link_action(token),
        media_url=_link_media_url(token),
        signed_in=False,
        token=token,
    )


@require_POST
def client_decide(request: HtmxHttpRequest, token: str, post_id: uuid.UUID) -> HttpResponseBase:
    link = link_for_token(token, LinkKind.REVIEW)
    post = get_link_post(link, post_id)
    failed = _decide(request, post, link=link, user=None)
    if failed is None:
        return redirect("client:review", token=token)
    posts = with_media(link_posts(link))
    return _review_page(
        request,
        posts,
        action=_link_action(token),
        media_url=_link_media_url(token),
        signed_in=False,
        reviewer_name=failed["reviewer_name"],
        failed=failed,
        token=token,
    )


@require_GET
def client_media(request: HtmxHttpRequest, token: str, media_id: uuid.UUID) -> HttpResponseBase:
    """A file of a post the link covers: a presigned URL valid a few minutes, or streamed."""
    media = get_link_media(link_for_token(token, LinkKind.REVIEW), media_id)
    storage, name = media_storage(), str(media.file.name)
    url = storage.browser_url(name, content_type=media.mime_type)
    if url is not None:
        if not storage.exists(name):
            raise Http404("The file is missing.")
        return _private(redirect(url))
    try:
        handle = media.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    return _private(FileResponse(handle, content_type=media.mime_type))


def _client_reviewer(request: HtmxHttpRequest) -> User:
    user = _user(request)
    if user.role != Role.CLIENT:
        raise Http404("No such page.")
    return user


def _signed_in_media_url(media: PostMedia) -> str:
    return reverse("posts:media_file", kwargs={"pk": media.pk})


def _signed_in_action(post: Post) -> str:
    return reverse("reviews:decide", kwargs={"post_id": post.pk})


@never_cache
@login_required
@require_GET
def my_reviews(request: HtmxHttpRequest) -> HttpResponseBase:
    """The same page for a signed-in client reviewer: what waits for their decision. (Agency
    members approve on the approvals page: their decisions are not the client's consent.)"""
    user = _client_reviewer(request)
    posts = with_media(posts_awaiting_review(user))
    return _review_page(
        request,
        posts,
        action=_signed_in_action,
        media_url=_signed_in_media_url,
        signed_in=True,
        reviewer_name=user.get_full_name() or user.email,
    )


@require_POST
@login_required
def my_decide(request: HtmxHttpRequest, post_id: uuid.UUID) -> HttpResponseBase:
    user = _client_reviewer(request)
    post = get_post_for_user(user, post_id, Perm.APPROVE)
    failed = _decide(request, post, link=None, user=user)
    if failed is None:
        return redirect("reviews:mine")
    return _review_page(
        request,
        with_media(posts_awaiting_review(user)),
        action=_signed_in_action,
        media_url=_signed_in_media_url,
        signed_in=True,
        reviewer_name=user.get_full_name() or user.email,
        failed=failed,
    )


# --- The shared calendar ---


@require_GET
def client_calendar(request: HtmxHttpRequest, token: str) -> HttpResponseBase:
    """A client's accounts' posts of the last 30 days and the next 60, read-only."""
    link = link_for_token(token, LinkKind.CALENDAR)
    now = timezone.now()
    coming: dict[dt.date, list[Post]] = {}
    past: dict[dt.date, list[Post]] = {}
    for post in calendar_posts(link, now):
        when = post.scheduled_at or now  # (calendar_posts has only posts with a time)
        day = timezone.localtime(when, _zone(post)).date()
        (coming if when >= now else past).setdefault(day, []).append(post)
    sections = [
        ("Coming up", list(coming.items())),
        ("Recently", [(day, list(reversed(posts))) for day, posts in reversed(past.items())]),
    ]
    context = {"client": link.client_label, "sections": sections, "expires_at": link.expires_at}
    return _private(render(request, "reviews/calendar.html", context))


def _zone(post: Post) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(post.schedule_time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
