"""The comment threads of a post: on the post page (the team's internal thread and the client
thread), and on the client review page (the client thread only, through a review link or signed
in as a client reviewer). Every thread is reached through the post's gate and answers 404 for a
post or thread its reader may not see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.comments.models import BODY_MAX, Comment, Visibility
from apps.comments.selectors import get_comment_for_user, may_delete, thread, visibilities_for
from apps.comments.services import AUTHOR_NAME_MAX, CommentError, comment_create, comment_delete
from apps.common.http import HtmxHttpRequest
from apps.common.throttle import throttle_hit
from apps.posts.models import Post
from apps.posts.selectors import get_post_for_user
from apps.reviews.models import LinkKind
from apps.reviews.selectors import get_link_post, link_for_token
from apps.users.models import Role, User

TITLES = {
    Visibility.INTERNAL: ("Team comments", "Only the agency's team reads these; clients never see them."),
    Visibility.CLIENT: ("Comments with the client", "The client reads these on their review page."),
}
CLIENT_TITLE = (
    "Messages with the agency",
    "Ask the agency about this post or leave them a note; they answer here.",
)


@dataclass
class Row:
    comment: Comment
    deletable: bool


@dataclass
class Thread:
    """One thread as its template shows it, with what a refused comment kept."""

    post: Post
    visibility: str
    title: str
    hint: str
    rows: list[Row]
    action: str
    time_zone: str
    ask_name: bool = False
    for_client: bool = False  # its reader is a client (labels that do not echo the decision form's)
    body: str = ""
    author_name: str = ""
    error: str = ""
    error_field: str = ""
    notice: str = ""
    body_max: int = BODY_MAX
    name_max: int = AUTHOR_NAME_MAX

    @property
    def dom_id(self) -> str:
        return f"comments-{self.visibility}-{self.post.pk}"


def team_thread(
    user: User, post: Post, visibility: str, comments: list[Comment] | None = None, **kept: Any
) -> Thread:
    """A thread of the post page (and of a signed-in client reviewer's review page)."""
    title, hint = TITLES[Visibility(visibility)] if user.role != Role.CLIENT else CLIENT_TITLE
    comments = thread(post, visibility) if comments is None else comments
    return Thread(
        post=post,
        visibility=visibility,
        title=title,
        hint=hint,
        rows=[Row(c, may_delete(user, c)) for c in comments],
        action=reverse("comments:post", kwargs={"post_id": post.pk}),
        time_zone=user.time_zone or "UTC",
        for_client=user.role == Role.CLIENT,
        **kept,
    )


def link_thread(token: str, post: Post, comments: list[Comment] | None = None, **kept: Any) -> Thread:
    """The client thread on the review page opened by a link (`comments`: read already)."""
    title, hint = CLIENT_TITLE
    comments = thread(post, Visibility.CLIENT) if comments is None else comments
    return Thread(
        post=post,
        visibility=Visibility.CLIENT,
        title=title,
        hint=hint,
        rows=[Row(c, False) for c in comments],
        action=reverse("client:comment", kwargs={"token": token, "post_id": post.pk}),
        time_zone=post.schedule_time_zone or "UTC",
        ask_name=True,
        for_client=True,
        **kept,
    )


def _user(request: HtmxHttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _fragment(request: HtmxHttpRequest) -> bool:
    return bool(request.htmx and not request.htmx.history_restore_request)


def _back_to(user: User, post: Post, visibility: str) -> str:
    """Where the no-JavaScript flow returns after a comment: the page the thread sits on."""
    if user.role == Role.CLIENT:
        return f"{reverse('reviews:mine')}#post-{post.pk}"
    return f"{reverse('posts:detail', kwargs={'pk': post.pk})}#comments-{visibility}-{post.pk}"


def _told(comment: Comment) -> str:
    names = [m.user.get_full_name() for m in comment.mentions.select_related("user").order_by("id")]
    return f" Mentioned: {', '.join(names)}." if names else ""


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def post_comments(request: HtmxHttpRequest, post_id: uuid.UUID) -> HttpResponse:
    """A post's threads on a page of their own (GET), and adding a comment to one (POST): htmx
    gets the thread back, the plain form a redirect to the post's page (or this page again, with
    the refusal and what was typed)."""
    user = _user(request)
    post = get_post_for_user(user, post_id)
    visibilities = visibilities_for(user)
    if request.method == "GET":
        threads = [team_thread(user, post, v) for v in visibilities]
        return render(request, "comments/page.html", {"post": post, "threads": threads})
    visibility = request.POST.get("visibility", "")
    if visibility not in visibilities:
        raise Http404("No such thread.")
    body = request.POST.get("body", "")
    try:
        comment = comment_create(post=post, body=body, visibility=visibility, by=user, request=request)
    except CommentError as exc:
        failed = team_thread(user, post, visibility, body=body, error=str(exc), error_field=exc.field)
        if _fragment(request):
            return render(request, "comments/_thread.html", {"thread": failed})
        threads = [failed if v == visibility else team_thread(user, post, v) for v in visibilities]
        return render(request, "comments/page.html", {"post": post, "threads": threads})
    said = "Comment added." + _told(comment)
    if _fragment(request):
        added = team_thread(user, post, visibility, notice=said)
        return render(request, "comments/_thread.html", {"thread": added})
    messages.success(request, said)
    return redirect(_back_to(user, post, visibility))


@login_required
@require_POST
@vary_on_headers("HX-Request")
def comment_delete_view(request: HtmxHttpRequest, pk: uuid.UUID) -> HttpResponse:
    user = _user(request)
    comment = get_comment_for_user(user, pk)
    try:
        comment_delete(comment=comment, by=user, request=request)
    except PermissionError:
        raise Http404("No such comment.") from None
    if _fragment(request):
        fresh = team_thread(user, comment.post, comment.visibility, notice="Comment deleted.")
        return render(request, "comments/_thread.html", {"thread": fresh})
    messages.success(request, "Comment deleted.")
    return redirect(_back_to(user, comment.post, comment.visibility))


def _private(response: HttpResponseBase) -> HttpResponseBase:
    """Pages opened by a secret link are never cached and never sent on as a referrer (as the
    review page's own, apps.reviews.views)."""
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "same-origin"
    return response


@require_POST
def client_comment(request: HtmxHttpRequest, token: str, post_id: uuid.UUID) -> HttpResponseBase:
    """A client's comment from the review page: 404 for a link that no longer opens (revoked,
    expired) or a post it does not cover."""
    link = link_for_token(token, LinkKind.REVIEW)
    post = get_link_post(link, post_id)
    body, name = request.POST.get("body", ""), request.POST.get("author_name", "")
    limited = throttle_hit(request, "client-comment", address=str(link.pk))
    try:
        if limited is not None:
            raise CommentError(
                f"Too many comments through this link: at most {limited.limit} an hour. "
                f"Please try again in {limited.minutes} minute{'s' if limited.minutes != 1 else ''}."
            )
        comment_create(
            post=post, body=body, visibility=Visibility.CLIENT, link=link, author_name=name, request=request
        )
    except CommentError as exc:
        failed = link_thread(token, post, body=body, author_name=name, error=str(exc), error_field=exc.field)
        return _private(render(request, "comments/client_page.html", {"post": post, "thread": failed}))
    messages.success(request, "Your comment was sent to the agency.")
    return _private(
        redirect(f"{reverse('client:review', kwargs={'token': token})}#comments-client-{post.pk}")
    )
