"""The Team page (owners and admins: invite, roles, per-account access, deactivation,
ownership) and the page where an invited person joins. Every team URL but `join` answers 404
to anyone who is not an owner or admin (the gates in apps.team.selectors)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, Perm, access_table
from apps.common.pagination import keyset_page
from apps.common.throttle import throttle_hit
from apps.mfa.reauth import reauth_prompt, reauth_refusal
from apps.team import services
from apps.team.forms import AccessForm, InviteForm, JoinForm, RoleForm, role_defaults_text
from apps.team.selectors import (
    MEMBER_ORDER,
    get_invitation_for_user,
    get_member_for_user,
    invitations_pending,
    members_active,
    members_deactivated,
    require_team_admin,
)
from apps.users.models import Role, User, email_normalize

MEMBERS_PAGE_SIZE = 50


def _add_service_errors(form: Form, exc: ValidationError) -> None:
    """A service's ValidationError next to the fields it names (the rest above the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _message(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _role_help() -> list[tuple[str, str]]:
    return [(label, role_defaults_text(value)) for value, label in Role.choices]


def _accounts() -> list[TikTokAccount]:
    return list(TikTokAccount.objects.order_by("username", "display_name"))


@dataclass(frozen=True)
class MemberRow:
    """A member as the Team list shows them: their page, and their last sign-in written here, in
    the viewer's zone, rather than through a URL tag and two filters per row."""

    member: User
    url: str
    seen_iso: str
    seen: str


def _member_rows(members: list[User]) -> list[MemberRow]:
    placeholder = str(uuid.UUID(int=0))
    page = reverse("team:member", args=[placeholder])
    return [
        MemberRow(
            member=member,
            url=page.replace(placeholder, str(member.pk)),
            seen_iso=timezone.localtime(member.last_login).isoformat() if member.last_login else "",
            seen=str(naturaltime(member.last_login)) if member.last_login else "",
        )
        for member in members
    ]


def _invitable_accounts() -> QuerySet[TikTokAccount]:
    """The accounts an invitation may grant, as the form lists them (no tokens read)."""
    return TikTokAccount.objects.order_by("username").only(
        "id", "username", "display_name", "open_id", "client_label"
    )


# --- The team ---


def _team_page(request: HttpRequest, form: InviteForm, status: int = 200) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    # The list's columns only: a member's other twenty (password, preferences, audit fields) are
    # not shown, and building fifty whole users cost more than reading them.
    members = members_active(user).only("id", "email", "name", "role", "last_login")
    page = keyset_page(members, MEMBER_ORDER, request.GET, size=MEMBERS_PAGE_SIZE)
    template = "team/list.html"
    if getattr(request, "htmx", False) and not request.htmx.history_restore_request:  # type: ignore[attr-defined]
        template = "team/list.html#members"  # the pager's links
    return render(
        request,
        template,
        {
            "page": page,
            "members": page.rows,
            "rows": _member_rows(page.rows),
            "deactivated": members_deactivated(user),
            "invitations": invitations_pending(user),
            "form": form,
            "role_help": _role_help()[1:],  # owners are not invited
            "invitation_days": services.INVITATION_DAYS,
        },
        status=status,
    )


@require_GET
@login_required
@vary_on_headers("HX-Request")
def team_list(request: HttpRequest) -> HttpResponse:
    require_team_admin(request.user)
    return _team_page(request, InviteForm(accounts=_invitable_accounts()))


@require_POST
@login_required
def invite(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    require_team_admin(user)
    form = InviteForm(request.POST, accounts=_invitable_accounts())
    if form.is_valid():
        limited = throttle_hit(request, "invitation", address=email_normalize(form.cleaned_data["email"]))
        if limited is not None:
            form.add_error(None, limited.sentence("invitations"))
            response = _team_page(request, form, status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        try:
            invitation = services.invitation_send(**form.cleaned_data, by=user, request=request)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Invitation sent to {invitation.email} as {invitation.get_role_display()}. "
                f"The link works once, for {services.INVITATION_DAYS} days.",
            )
            return redirect("team:list")
    return _team_page(request, form)


@require_POST
@login_required
def invitation_resend(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    invitation = get_invitation_for_user(user, pk)
    limited = throttle_hit(request, "invitation", address=email_normalize(invitation.email))
    if limited is not None:
        messages.error(request, limited.sentence("invitations"))
        return redirect("team:list")
    try:
        services.invitation_resend(invitation=invitation, by=user, request=request)
    except ValidationError as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(
            request,
            f"Sent a new invitation link to {invitation.email}; the previous link no longer works.",
        )
    return redirect("team:list")


@require_POST
@login_required
def invitation_revoke(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    invitation = get_invitation_for_user(user, pk)
    try:
        services.invitation_revoke(invitation=invitation, by=user, request=request)
    except ValidationError as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(request, f"Revoked the invitation for {invitation.email}; its link no longer works.")
    return redirect("team:list")


# --- One member ---


def _member_page(
    request: HttpRequest,
    member: User,
    *,
    role_form: RoleForm | None = None,
    access_form: AccessForm | None = None,
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    accounts = _accounts()
    if role_form is None:
        role_form = RoleForm(initial={"role": member.role}, may_make_owner=user.role == Role.OWNER)
    if access_form is None:
        held = access_table(member)
        initial = {f"account_{a.pk}": [p.value for p in Perm if p in held.get(a.pk, ())] for a in accounts}
        access_form = AccessForm(initial=initial, accounts=accounts)
    may_change = user.role == Role.OWNER or member.role != Role.OWNER
    return render(
        request,
        "team/member.html",
        {
            "member": member,
            "is_self": member.pk == user.pk,
            "may_change": may_change,
            "holds_everything": member.role in {Role.OWNER, Role.ADMIN},
            "role_form": role_form,
            "access_form": access_form,
            "perms": list(Perm),
            "role_help": _role_help(),
            "role_defaults": [p.label for p in Perm if p in ROLE_DEFAULTS[member.role]],
            "may_transfer": user.role == Role.OWNER and member.pk != user.pk and member.role != Role.OWNER,
        },
    )


@require_GET
@login_required
def member_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _member_page(request, get_member_for_user(request.user, pk))


@require_POST
@login_required
def member_role(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    member = get_member_for_user(user, pk)
    form = RoleForm(request.POST, may_make_owner=user.role == Role.OWNER)
    making_owner = form.is_valid() and form.cleaned_data["role"] == Role.OWNER and member.role != Role.OWNER
    refusal = reauth_refusal(request) if making_owner and _confirmed(request) else None
    if making_owner and (not _confirmed(request) or refusal is not None):
        # As much power as a transfer of ownership, so asked the same way.
        return _confirm(
            request,
            refusal,
            title=f"Make {member.email} an owner too?",
            lead=f"{member.get_full_name()} becomes an owner of {request.tenant.name}, beside you.",  # type: ignore[attr-defined]
            consequences=[
                "Owners hold every permission and run the team, the settings and the agency admin.",
                "Owners can change or remove every other owner, you included.",
            ],
            hidden=[("role", Role.OWNER)],
            action_url=reverse("team:member_role", kwargs={"pk": member.pk}),
            button_label=f"Make {member.email} an owner",
            cancel_url=reverse("team:member", kwargs={"pk": member.pk}),
        )
    if form.is_valid():
        old = member.get_role_display()
        try:
            changed = services.member_change_role(
                member=member, role=form.cleaned_data["role"], by=user, request=request
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            if changed:
                member.refresh_from_db()
                messages.success(request, f"{member.email} is now {member.get_role_display()} (was {old}).")
            else:
                messages.info(request, f"Nothing changed: {member.email} already is {old}.")
            return redirect("team:member", pk=member.pk)
    return _member_page(request, member, role_form=form)


@require_POST
@login_required
def member_access(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    member = get_member_for_user(user, pk)
    form = AccessForm(request.POST, accounts=_accounts())
    if form.is_valid():
        try:
            changed = services.member_set_access(member=member, table=form.table(), by=user, request=request)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            if changed:
                messages.success(
                    request,
                    f"Saved {member.email}'s access: {changed} account{'s' if changed != 1 else ''} changed.",
                )
            else:
                messages.info(request, "Nothing changed: the access was already like that.")
            return redirect("team:member", pk=member.pk)
    return _member_page(request, member, access_form=form)


def _confirm(request: HttpRequest, refusal: dict[str, Any] | None, **context: Any) -> HttpResponse:
    """The question asked before an action that cannot be undone (posted again with confirm=yes),
    with the password asked again when the re-authentication window has closed (`refusal`: it was
    posted and was not right)."""
    return render(
        request,
        "web/confirm.html",
        {"items": [], "items_title": "", "hidden": [], **context, **(refusal or reauth_prompt(request))},
        status=400 if refusal is not None else 200,
    )


def _confirmed(request: HttpRequest) -> bool:
    return request.POST.get("confirm") == "yes"


@require_POST
@login_required
def member_deactivate(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    member = get_member_for_user(user, pk)
    refusal = reauth_refusal(request) if _confirmed(request) else None
    if not _confirmed(request) or refusal is not None:
        try:
            services.member_deactivate_check(member=member, by=user)
        except ValidationError as exc:
            messages.error(request, _message(exc))
            return redirect("team:member", pk=member.pk)
        return _confirm(
            request,
            refusal,
            title=f"Deactivate {member.email}?",
            lead=f"{member.get_full_name()} ({member.get_role_display()}) will be signed out at once and "
            "can no longer sign in to this agency.",
            consequences=[
                "Their posts, decisions and audit history stay, under their name.",
                "Invitations they sent and nobody accepted yet stop working.",
                "To bring them back, invite the same email again.",
            ],
            action_url=reverse("team:member_deactivate", kwargs={"pk": member.pk}),
            button_label=f"Deactivate {member.email}",
            cancel_url=reverse("team:member", kwargs={"pk": member.pk}),
        )
    try:
        services.member_deactivate(member=member, by=user, request=request)
    except ValidationError as exc:
        messages.error(request, _message(exc))
        return redirect("team:member", pk=member.pk)
    messages.success(
        request,
        f"Deactivated {member.email}: they were signed out and can no longer sign in. "
        "Their posts and history stay.",
    )
    return redirect("team:list")


@require_POST
@login_required
def ownership_transfer(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    member = get_member_for_user(user, pk)
    refusal = reauth_refusal(request) if _confirmed(request) else None
    if not _confirmed(request) or refusal is not None:
        try:
            services.ownership_transfer_check(to=member, by=user)
        except ValidationError as exc:
            messages.error(request, _message(exc))
            return redirect("team:member", pk=member.pk)
        agency_name = request.tenant.name  # type: ignore[attr-defined]
        return _confirm(
            request,
            refusal,
            title=f"Make {member.email} an owner?",
            lead=f"{member.get_full_name()} becomes an owner of {agency_name}, and you become an admin.",
            consequences=[
                "Owners can change or remove every other owner, you included; as an admin you no longer can.",
                "Only an owner can give ownership back to you.",
            ],
            action_url=reverse("team:ownership_transfer", kwargs={"pk": member.pk}),
            button_label=f"Transfer ownership to {member.email}",
            cancel_url=reverse("team:member", kwargs={"pk": member.pk}),
        )
    try:
        services.ownership_transfer(to=member, by=user, request=request)
    except ValidationError as exc:
        messages.error(request, _message(exc))
        return redirect("team:member", pk=member.pk)
    messages.success(request, f"{member.email} now owns the agency; you are an admin.")
    return redirect("team:list")


# --- Joining ---


@require_http_methods(["GET", "POST"])
@never_cache
def join(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: choose a name and password, then arrive signed in."""
    try:
        invitation = services.invitation_for_token(token)
    except services.InvitationError as exc:
        return render(
            request, "team/join_invalid.html", {"reason": exc.code, "message": str(exc)}, status=400
        )
    if request.user.is_authenticated:
        return render(request, "team/join_signed_in.html", {"invitation": invitation})
    form = JoinForm(request.POST) if request.method == "POST" else JoinForm()
    if form.is_bound and form.is_valid():
        try:
            user = services.invitation_accept(
                raw=token,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except services.InvitationError as exc:
            return render(
                request, "team/join_invalid.html", {"reason": exc.code, "message": str(exc)}, status=400
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            agency = request.tenant  # type: ignore[attr-defined]
            role = user.get_role_display()
            messages.success(
                request, f"Welcome to {agency.name}, {user.get_short_name()}! You joined as {role}."
            )
            return redirect("home")
    return render(
        request,
        "team/join.html",
        {"invitation": invitation, "form": form, "role_defaults": role_defaults_text(invitation.role)},
    )
