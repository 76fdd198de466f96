"""`{% site_nav %}`: the signed-in header's navigation, bell and personal menu, written in Python
with the markup the base template's tags had, every value escaped. Twenty URL names, fifteen
conditions and the menu through the template engine were about half of what rendering the base
layout cost on every page.

Each link is offered where the site has its URL (the public site has none of the agency's) and
where the same rule as its page allows: drafting and approving from the navigation context
processor, the agency's own administration for owners and admins, the Django admin for staff.
The link to the page being shown is marked `aria-current="page"`."""

from __future__ import annotations

from html import escape
from typing import Any

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from apps.common.links import named_url

register = template.Library()

_ADMINS = "agency admins"  # owners and admins (User.is_agency_admin)

# (URL name, label, who is offered it: anyone, a context flag, or the agency's admins)
_LINKS: tuple[tuple[str, str, str | None], ...] = (
    ("home", "Dashboard", None),
    ("schedule:calendar", "Calendar", None),
    ("posts:list", "Posts", None),
    ("posts:approvals", "Approvals", "may_approve_somewhere"),
    ("posts:compose", "New post", "may_draft_somewhere"),
    ("media:library", "Media", "may_draft_somewhere"),
    ("queues:index", "Queues", None),
    ("accounts:list", "Accounts", None),
    ("analytics:overview", "Analytics", None),
    ("reports:page", "Reports", None),
    ("team:list", "Team", _ADMINS),
    ("audit:list", "Audit log", _ADMINS),
    ("settings", "Settings", _ADMINS),
)

_MENU = (
    ("profile", "Your profile"),
    ("notifications:preferences", "Notification preferences"),
    ("mfa:setup", "Two-step sign-in"),
    ("password_change", "Change password"),
)


def _bell_icon() -> str:
    """The bell's inside before htmx loads the count (the template the bell's own answer uses)."""
    return render_to_string("notifications/_bell.html", {"unread": None})


def _offered(context: template.Context, user: Any, who: str | None) -> bool:
    if who is None:
        return True
    if who == _ADMINS:
        return bool(user.is_agency_admin)
    return bool(context.get(who))  # a lazy flag: asked only here, once the URL exists


def _current(path: str, url: str) -> str:
    return ' aria-current="page"' if path == url else ""


@register.simple_tag(takes_context=True)
def site_nav(context: template.Context) -> SafeString:
    user = context["user"]
    path = context["request"].path
    links = []
    for name, label, who in _LINKS:
        url = named_url(name)
        if url and _offered(context, user, who):
            links.append(f'<a href="{escape(url)}"{_current(path, url)}>{label}</a>')
    if user.is_staff:
        links.append(f'<a href="{escape(named_url("admin:index"))}">Admin</a>')
    notifications = named_url("notifications:list")
    menu = "".join(f'<p><a href="{escape(named_url(name))}">{label}</a></p>\n' for name, label in _MENU)
    csrf = str(CsrfTokenNode().render(context))  # Django's own, as {% csrf_token %} writes it
    return mark_safe(  # noqa: S308 (every value escaped)
        # Below 640 px the navigation folds away behind this disclosure; the CSS shows it while
        # open (no JavaScript).
        '<details class="navmenu"><summary aria-controls="mainnav">Menu</summary></details>\n'
        '<nav aria-label="Main" class="mainnav" id="mainnav">\n' + "\n".join(links) + "\n</nav>\n"
        f'<a class="bell" href="{escape(notifications)}" hx-get="{escape(named_url("notifications:bell"))}"'
        f' hx-trigger="load, every 10s" hx-swap="innerHTML"{_current(path, notifications)}>'
        f"{_bell_icon()}</a>\n"
        '<details class="usermenu">\n'
        f"<summary>{escape(user.get_short_name())}</summary>\n"
        '<div class="usermenu-panel">\n'
        f'<p class="muted">{escape(user.email)}<br>{escape(str(user.get_role_display()))}</p>\n'
        f"{menu}"
        f'<form method="post" action="{escape(named_url("logout"))}">{csrf}'
        '<button type="submit" class="link">Sign out</button></form>\n'
        "</div>\n"
        "</details>"
    )
