"""Connected TikTok accounts: the agency's accounts page, connecting and disconnecting,
and the OAuth callback on the root domain."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.models import without_secrets
from apps.accounts.oauth import StateError, state_consume, state_issue, state_read
from apps.accounts.permissions import Perm, accounts_with, get_account_for_user, may_connect, user_may
from apps.accounts.posting_limits import (
    DAILY_CAP,
    INBOX_SHARE_CAP,
    account_posting_limit,
    app_posting_limit,
    with_posting_counts,
)
from apps.accounts.services import (
    CLIENT_LABEL_MAX,
    ReconnectRefused,
    account_connect,
    account_disconnect,
    account_set_client_label,
    account_set_requires_approval,
    posts_waiting_for,
)
from apps.common.pagination import Keyset, keyset_page
from apps.mfa.reauth import reauth_prompt, reauth_refusal
from apps.tiktok.client import TikTokClient
from apps.tiktok.errors import TikTokError, oauth_refusal
from apps.tiktok.scopes import missing_analytics_scopes, missing_posting_scopes, user_fields
from apps.users.models import User
from tenants.models import Agency, AgencyStatus

logger = logging.getLogger(__name__)

# Accounts a page at a time, by name (the id breaks ties: apps.common.pagination).
ACCOUNT_ORDER = Keyset(("username", "display_name", "id"))
ACCOUNTS_PAGE_SIZE = 25


def _pager_swap(request: HttpRequest) -> bool:
    """Whether this is the pager's htmx request, answered with the list alone."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


@require_GET
@login_required
@vary_on_headers("HX-Request")
def account_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    managed = set(accounts_with(user, Perm.MANAGE).values_list("pk", flat=True))
    # The approval rule takes both managing the account and approving its posts: whoever may
    # switch approval off could have approved those posts anyway.
    rules_approval = managed & set(accounts_with(user, Perm.APPROVE).values_list("pk", flat=True))
    now = timezone.now()
    page = keyset_page(
        without_secrets(accounts_with(user)), ACCOUNT_ORDER, request.GET, size=ACCOUNTS_PAGE_SIZE
    )
    accounts = with_posting_counts(page.rows, now=now)
    app_limit = app_posting_limit(now=now)
    for account in accounts:
        account.posting_limit = app_limit or account_posting_limit(account, now)  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/list.html#accounts" if _pager_swap(request) else "accounts/list.html",
        {
            "page": page,
            "accounts": accounts,
            "daily_cap": DAILY_CAP,
            "inbox_share_cap": INBOX_SHARE_CAP,
            "may_connect": may_connect(user),
            "managed": managed,
            "rules_approval": rules_approval,
            "client_label_max": CLIENT_LABEL_MAX,
        },
    )


@require_POST
@login_required
def account_connect_start(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not may_connect(user):
        messages.error(request, "Only owners, admins and managers can connect accounts.")
        return redirect("accounts:list")
    if refusal := request.tenant.unverified_refusal:  # type: ignore[attr-defined]
        messages.error(request, refusal)
        return redirect("email_verification")
    started = state_issue(
        schema=request.tenant.schema_name,  # type: ignore[attr-defined]
        user_id=str(user.pk),
        session=request.session,
    )
    url = TikTokClient(limiter=None).authorize_url(
        redirect_uri=settings.TIKTOK_REDIRECT_URI,
        state=started.state,
        scopes=settings.TIKTOK_SCOPES,
        code_challenge=started.code_challenge,
    )
    return redirect(url)


def _waiting_sentence(count: int) -> str:
    if not count:
        return "No post is scheduled or waiting for approval for it."
    if count == 1:
        return "1 post scheduled or waiting for approval goes back to drafts, with a note saying why."
    return f"{count} posts scheduled or waiting for approval go back to drafts, with a note saying why."


@require_POST
@login_required
def account_disconnect_view(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    account = get_account_for_user(user, pk, Perm.MANAGE)
    confirmed = request.POST.get("confirm") == "yes"
    refusal = reauth_refusal(request) if confirmed else None
    if not confirmed or refusal is not None:
        waiting = list(posts_waiting_for(account))
        zone = ZoneInfo(user.time_zone or "UTC")
        return render(
            request,
            "web/confirm.html",
            {
                "title": f"Disconnect {account}?",
                "lead": f"Postline gives back its access to {account} on TikTok and stops posting to it.",
                "consequences": [
                    _waiting_sentence(len(waiting)),
                    "Published posts, analytics and the audit history stay.",
                    "To post again, connect the account again from the Accounts page.",
                ],
                "items_title": "Posts taken off the schedule",
                "items": [
                    f"{post} · {date_format(post.scheduled_at.astimezone(zone), 'j M Y, H:i')} ({zone.key})"
                    if post.scheduled_at
                    else str(post)
                    for post in waiting
                ],
                "action_url": reverse("accounts:disconnect", kwargs={"pk": account.pk}),
                "button_label": f"Disconnect {account}",
                "cancel_url": reverse("accounts:list"),
                **(refusal or reauth_prompt(request)),
            },
            status=400 if refusal is not None else 200,
        )
    moved = account_disconnect(account=account, by=user, request=request)
    back = {0: "", 1: " 1 waiting post went back to drafts."}.get(
        moved, f" {moved} waiting posts went back to drafts."
    )
    messages.success(request, f"Disconnected {account}. Its tokens were revoked at TikTok.{back}")
    return redirect("accounts:list")


@require_POST
@login_required
def account_approval_view(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Turn on or off whether this account's posts wait for approval."""
    user: User = request.user  # type: ignore[assignment]
    account = get_account_for_user(user, pk, Perm.MANAGE)
    if not user_may(user, Perm.APPROVE, account):
        raise Http404
    wanted = request.POST.get("requires_approval") == "on"
    account_set_requires_approval(account=account, requires_approval=wanted, by=user, request=request)
    messages.success(
        request,
        f"Posts for {account} now wait for approval unless their author may schedule without it."
        if wanted
        else f"Posts for {account} no longer need approval.",
    )
    return redirect("accounts:list")


@require_POST
@login_required
def account_client_view(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Name the client an account belongs to (those who manage the account)."""
    user: User = request.user  # type: ignore[assignment]
    account = get_account_for_user(user, pk, Perm.MANAGE)
    try:
        changed = account_set_client_label(
            account=account, label=str(request.POST.get("client_label", "")), by=user, request=request
        )
    except ValueError as exc:
        messages.error(request, f"The client of {account} was not changed: {exc}")
        return redirect("accounts:list")
    account.refresh_from_db()
    if not changed:
        messages.info(request, f"Nothing changed for {account}.")
    elif account.client_label:
        messages.success(request, f"{account} now belongs to the client “{account.client_label}”.")
    else:
        messages.success(request, f"{account} no longer names a client.")
    return redirect("accounts:list")


# --- Root domain ---


def _error_page(request: HttpRequest, title: str, message: str, status: int = 400) -> HttpResponse:
    return render(request, "accounts/oauth_error.html", {"title": title, "message": message}, status=status)


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """TikTok sends the browser here after consent; `state` says which agency asked. Nothing is
    exchanged here: the browser goes on to that agency, where its own session finishes the flow."""
    try:
        state = state_read(request.GET.get("state", ""))
    except StateError as exc:
        return _error_page(
            request,
            "This connection could not be completed",
            f"{exc} Start again from your agency's Accounts page.",
        )
    agency = Agency.objects.filter(schema_name=state.schema, status=AgencyStatus.ACTIVE).first()
    if agency is None:
        return _error_page(
            request,
            "This agency is not available",
            "The agency that started this connection "
            "is suspended or no longer exists; nothing was connected.",
        )

    # The exchange happens on the agency's subdomain, in the session that started it. Only what
    # that step reads is passed on: never TikTok's free-text error_description.
    forwarded = {name: request.GET[name] for name in ("code", "state", "error") if request.GET.get(name)}
    path = reverse("accounts:connect_finish", urlconf=settings.ROOT_URLCONF)
    return redirect(f"{agency.url.rstrip('/')}{path}?{urlencode(forwarded)}")


# --- Agency subdomain: the end of the flow ---


def _refusal_page(request: HttpRequest, message: str) -> HttpResponse:
    return _error_page(request, "This connection could not be completed", message)


@require_GET
@never_cache
def account_connect_finish(request: HttpRequest) -> HttpResponse:
    """Where the root-domain callback sends the browser: store the grant only for the signed-in
    user whose session started this connection (apps.accounts.oauth)."""
    user = request.user
    try:
        state = state_consume(
            request.GET.get("state", ""),
            schema=request.tenant.schema_name,  # type: ignore[attr-defined]
            user_id=str(user.pk) if user.is_authenticated else "",
            session=request.session,
        )
    except StateError as exc:
        return _refusal_page(request, f"{exc} Start again from your agency's Accounts page.")
    if not isinstance(user, User):  # state_consume refuses anonymous visitors; this is for mypy
        raise Http404
    if refusal := request.tenant.unverified_refusal:  # type: ignore[attr-defined]
        # Nothing is exchanged: TikTok's code is left to expire unused.
        return _refusal_page(request, f"Nothing was connected. {refusal}")

    def back(level: str, text: str) -> HttpResponse:
        messages.add_message(
            request,
            {"success": messages.SUCCESS, "warning": messages.WARNING}.get(level, messages.ERROR),
            text,
        )
        return redirect("accounts:list")

    error = request.GET.get("error")
    if error:
        return back(*oauth_refusal(error))
    code = request.GET.get("code", "")
    if not code:
        return back(
            "error", "TikTok did not send an authorisation code. Nothing was connected; please try again."
        )
    if not may_connect(user):  # their role changed since they started
        return back("error", "You may no longer connect accounts in this agency; nothing was connected.")

    client = TikTokClient(limiter=None)
    try:
        grant = client.exchange_code(
            code=code, redirect_uri=settings.TIKTOK_REDIRECT_URI, code_verifier=state.code_verifier
        )
    except TikTokError as exc:
        logger.warning("Code exchange failed: %s (log_id %s)", exc.code, exc.log_id)
        return back("error", f"TikTok did not complete the connection: {exc.human_message()}")
    missing = missing_posting_scopes(grant.scopes)
    if missing:
        try:
            client.revoke(token=grant.access_token)
        except TikTokError:
            logger.warning("Revoking a grant with missing scopes failed")
        return back(
            "error",
            "The account was not connected: Postline needs these permissions to post, and they were "
            f"not granted: {', '.join(missing)}. Connect again and leave them ticked.",
        )
    try:
        info = client.user_info(access_token=grant.access_token, fields=user_fields(grant.scopes))
    except TikTokError as exc:
        return back("error", f"TikTok did not share the account's profile: {exc.human_message()}")
    try:
        account, created = account_connect(
            grant=grant,
            user_info=info,
            by=user,
            agency=request.tenant,  # type: ignore[attr-defined]
            request=request,
        )
    except ReconnectRefused as exc:
        return back("error", str(exc))
    done = f"Connected {account}." if created else f"Reconnected {account}."
    without = missing_analytics_scopes(grant.scopes)
    if without:
        return back(
            "warning",
            f"{done} It can post; its analytics stay unavailable without {', '.join(without)} "
            "(see the Analytics page).",
        )
    return back("success", done)
