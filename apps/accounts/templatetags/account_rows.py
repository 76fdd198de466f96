"""`{% account_rows accounts %}`: the Accounts page's rows, written in Python with the markup the
template had, every value escaped: a page of accounts, each with up to four forms and a few
dozen lookups and conditions through the template engine, was half of the page's time.

The rows read what the page's view gives (apps.accounts.views.account_list): `managed` and
`rules_approval` (the ids of the accounts this person may manage, and whose approval rule they
may change), `daily_cap`, `inbox_share_cap`, `client_label_max` and the CSRF token."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from html import escape
from typing import Any

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from apps.common.links import named_url
from apps.common.templatetags.links import row_links

register = template.Library()


@register.simple_tag(takes_context=True)
def account_rows(context: template.Context, accounts: Iterable[Any]) -> SafeString:
    csrf = str(CsrfTokenNode().render(context))  # Django's own, as {% csrf_token %} writes it
    page = _Page(
        csrf=csrf,
        managed=context.get("managed") or set(),
        rules_approval=context.get("rules_approval") or set(),
        daily_cap=context["daily_cap"],
        inbox_share_cap=context["inbox_share_cap"],
        client_label_max=context["client_label_max"],
        client_url=row_links(context, "accounts:client"),
        approval_url=row_links(context, "accounts:approval"),
        disconnect_url=row_links(context, "accounts:disconnect"),
        connect_url=named_url("accounts:connect"),
    )
    now = timezone.now()
    return mark_safe("".join(page.row(account, now) for account in accounts))  # noqa: S308 (escaped)


@dataclass(frozen=True)
class _Page:
    csrf: str
    managed: AbstractSet[Any]
    rules_approval: AbstractSet[Any]
    daily_cap: int
    inbox_share_cap: int
    client_label_max: int
    client_url: Callable[[Any], str]
    approval_url: Callable[[Any], str]
    disconnect_url: Callable[[Any], str]
    connect_url: str

    def row(self, account: Any, now: Any) -> str:
        pk = account.pk
        name = escape(str(account))
        managed = pk in self.managed
        return (
            "      <tr>\n"
            f'        <td data-label="Account"><strong>{name}</strong><br>'
            f'<span class="muted">{escape(account.display_name)}</span></td>\n'
            f'        <td data-label="Client">{self._client(account, name, managed)}</td>\n'
            f'        <td data-label="Status">{self._status(account)}</td>\n'
            f'        <td data-label="Authorisation">{self._authorisation(account, now)}</td>\n'
            f'        <td data-label="Last 24 hours">{self._last_day(account)}</td>\n'
            '        <td data-label="Followers">'
            f"{'—' if account.follower_count is None else f'{account.follower_count:,}'}</td>\n"
            f'        <td data-label="Approval">{self._approval(account)}</td>\n'
            f"{self._actions(account, managed) if self.managed else ''}"
            "      </tr>\n"
        )

    def _client(self, account: Any, name: str, managed: bool) -> str:
        if not managed:
            return escape(account.client_label or "—")
        pk = account.pk
        return (
            f'\n          <form method="post" action="{self.client_url(pk)}" class="client-form">'
            f"{self.csrf}\n"
            f'            <label class="visually-hidden" for="client-{pk}">Client of {name}</label>\n'
            f'            <input id="client-{pk}" name="client_label" value="{escape(account.client_label)}" '
            f'maxlength="{self.client_label_max}" placeholder="Client\'s name">\n'
            '            <button type="submit" class="link">Save<span class="visually-hidden"> the client of '
            f"{name}</span></button>\n"
            "          </form>\n          "
        )

    def _status(self, account: Any) -> str:
        label = escape(account.get_status_display())
        html = f'<span class="badge status-{escape(account.status)}">{label}</span>'
        if account.status_reason:
            html += f'\n            <br><span class="muted">{escape(account.status_reason)}</span>'
        limit = getattr(account, "posting_limit", None)
        if limit:
            html += (
                '\n            <br><span class="badge status-error">Cannot post</span> '
                f'<span class="error-text posting-limit">{escape(str(limit.sentence))}</span>'
            )
        return html

    def _authorisation(self, account: Any, now: Any) -> str:
        scopes = ", ".join(escape(scope) for scope in account.granted_scopes) or "no scope recorded"
        html = (
            f"{escape(str(account.token_status(now).label))}\n"
            f'            <br><span class="muted">Granted: {scopes}</span>'
        )
        if missing := account.missing_analytics:
            names = ", ".join(escape(scope) for scope, _ in missing)
            html += f'\n            <br><span class="muted">No analytics without {names}</span>'
        return html

    def _last_day(self, account: Any) -> str:
        posts = account.posts_last_24h
        html = (
            f'<span class="{"error-text" if posts >= self.daily_cap else ""}">{posts} of about '
            f"{self.daily_cap} posts</span>"
        )
        if shares := account.inbox_shares_last_24h:
            tone = "error-text" if shares >= self.inbox_share_cap else "muted"
            html += f'<br><span class="{tone}">{shares} of {self.inbox_share_cap} inbox drafts</span>'
        return html

    def _approval(self, account: Any) -> str:
        required = account.requires_approval
        if account.pk not in self.rules_approval:
            return "Posts need approval" if required else "Not required"
        button = (
            'Posts need approval <button type="submit" class="link">Stop requiring approval</button>'
            if required
            else 'Not required <button type="submit" class="link">Require approval</button>'
        )
        return (
            f'\n          <form method="post" action="{self.approval_url(account.pk)}">{self.csrf}\n'
            '            <input type="hidden" name="requires_approval" '
            f'value="{"off" if required else "on"}">\n'
            f"            {button}\n          </form>\n          "
        )

    def _actions(self, account: Any, managed: bool) -> str:
        forms = ""
        if managed:
            if account.status != "active":
                forms += (
                    f'\n            <form method="post" action="{self.connect_url}">{self.csrf}'
                    '<button type="submit" class="link">Reconnect</button></form>\n'
                )
            forms += (
                f'\n          <form method="post" action="{self.disconnect_url(account.pk)}">{self.csrf}'
                '<button type="submit" class="link danger">Disconnect</button></form>\n        '
            )
        return f'        <td class="actions">{forms}</td>\n'
