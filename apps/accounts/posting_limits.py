"""Limits TikTok puts on posting, remembered so we stop asking until they may have cleared.

Two kinds: a limit on one creator (banned from posting, its daily cap reached), kept on the
account, and a limit on Postline's whole TikTok app (`reached_active_user_cap`: too many active
posting creators), kept once in the public schema because every account of every agency is
affected. While a limit holds, a due post makes no call to TikTok: it fails at once with the
reason (a person is told), and account health shows it in red. At `recheck_at` the next post asks
TikTok again: an answer without the limit lifts it, the same refusal sets a new recheck time.

The per-creator daily cap TikTok enforces (about 15 posts, shared with every other tool posting
for the creator) and the 5 pending inbox shares are also counted here, over a rolling 24 hours,
from the calls TikTok accepted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format

from apps.accounts.models import TikTokAccount
from apps.audit.services import audit_record
from apps.common.outbox import notification_emit
from apps.posts.models import AttemptKind, AttemptOutcome, PublishAttempt, PublishMode
from apps.tiktok.models import AppPostingLimit

# TikTok's usual number of posts per creator and day (we warn from WARN_AT), and of pending inbox
# shares per creator and day.
DAILY_CAP = 15
WARN_AT = 12
INBOX_SHARE_CAP = 5

BANNED = "spam_risk_user_banned_from_posting"
DAILY_CAP_REACHED = "spam_risk_too_many_posts"
APP_CAP_REACHED = "reached_active_user_cap"
ACCOUNT_LIMIT_CODES = frozenset({BANNED, DAILY_CAP_REACHED})
APP_LIMIT_CODES = frozenset({APP_CAP_REACHED})
# How long to wait before asking TikTok again. A ban or a full day lasts hours; the app-wide cap
# is lifted by TikTok as other creators go quiet, so it is checked more often.
RECHECK_AFTER = {
    BANNED: dt.timedelta(hours=1),
    DAILY_CAP_REACHED: dt.timedelta(hours=1),
    APP_CAP_REACHED: dt.timedelta(minutes=15),
}


@dataclass(frozen=True)
class PostingLimit:
    """A limit in force: its TikTok code, since when, when we next ask TikTok, and whom it stops
    (an account's name; the app-wide limit stops everyone)."""

    code: str
    since: dt.datetime
    recheck_at: dt.datetime
    app_wide: bool
    who: str = "This account"

    @property
    def sentence(self) -> str:
        """What a person reads about it (times in UTC: it is also kept as a post's reason)."""
        again = date_format(self.recheck_at.astimezone(dt.UTC), "j M, H:i")
        if self.code == BANNED:
            return (
                f"TikTok has banned {self.who} from posting. Postline sends nothing for it until the ban "
                f"is lifted; we ask TikTok again after {again} UTC."
            )
        if self.code == DAILY_CAP_REACHED:
            return (
                f"{self.who} has reached TikTok's daily posting limit (about {DAILY_CAP} posts a day, "
                f"counting other tools). Postline sends nothing for it until after {again} UTC."
            )
        return (
            "Postline's TikTok app has reached TikTok's limit of active posting accounts, so no "
            f"account can post for now. We ask TikTok again after {again} UTC."
        )


def account_posting_limit(account: TikTokAccount, now: dt.datetime) -> PostingLimit | None:
    """The limit TikTok put on this creator alone, if it is in force (no query)."""
    if (
        account.posting_blocked_code
        and account.posting_recheck_at is not None
        and account.posting_recheck_at > now
        and account.posting_blocked_since is not None
    ):
        return PostingLimit(
            account.posting_blocked_code,
            account.posting_blocked_since,
            account.posting_recheck_at,
            app_wide=False,
            who=str(account),
        )
    return None


def app_posting_limit(*, now: dt.datetime | None = None) -> PostingLimit | None:
    """The app-wide limit in force, if any (shown on every agency's dashboard)."""
    now = now or timezone.now()
    app = AppPostingLimit.objects.filter(recheck_at__gt=now).order_by("-recheck_at").first()
    return PostingLimit(app.code, app.since, app.recheck_at, app_wide=True) if app else None


def posting_limit_for(account: TikTokAccount, *, now: dt.datetime | None = None) -> PostingLimit | None:
    """The limit that stops `account` from posting now, if any (the app-wide one first)."""
    now = now or timezone.now()
    return app_posting_limit(now=now) or account_posting_limit(account, now)


def posting_limit_record(*, account: TikTokAccount, code: str, now: dt.datetime | None = None) -> bool:
    """Remember a refusal TikTok gave for `account` if it is a posting limit; returns whether it was."""
    now = now or timezone.now()
    if code in APP_LIMIT_CODES:
        with transaction.atomic():
            limit, created = AppPostingLimit.objects.select_for_update().get_or_create(
                code=code, defaults={"since": now, "recheck_at": now + RECHECK_AFTER[code]}
            )
            if not created:
                if limit.recheck_at <= now - RECHECK_AFTER[code]:
                    limit.since = now  # a new episode, long after the last one cleared
                limit.recheck_at = now + RECHECK_AFTER[code]
                limit.save(update_fields=["since", "recheck_at", "updated_at"])
        return True
    if code not in ACCOUNT_LIMIT_CODES:
        return False
    with transaction.atomic():
        locked = TikTokAccount.objects.select_for_update().get(pk=account.pk)
        first = locked.posting_blocked_code != code
        locked.posting_blocked_code = code
        if first or locked.posting_blocked_since is None:
            locked.posting_blocked_since = now
        locked.posting_recheck_at = now + RECHECK_AFTER[code]
        locked.save(
            update_fields=[
                "posting_blocked_code",
                "posting_blocked_since",
                "posting_recheck_at",
                "updated_at",
            ]
        )
        if first:
            audit_record(action="account.posting_blocked", obj=locked, changes={"code": code})
            reason = PostingLimit(
                code, now, locked.posting_recheck_at, app_wide=False, who=str(locked)
            ).sentence
            kind = "account_banned" if code == BANNED else "account_daily_cap"
            notification_emit(kind=kind, obj=locked, key=f"{locked.pk}:{now.isoformat()}", reason=reason)
    account.posting_blocked_code = locked.posting_blocked_code
    account.posting_blocked_since = locked.posting_blocked_since
    account.posting_recheck_at = locked.posting_recheck_at
    return True


def posting_limit_lift(*, account: TikTokAccount, app_wide: bool = False) -> None:
    """TikTok accepted a call a limit would have refused: the account's limit (and with
    `app_wide`, the app's) is over."""
    if app_wide and AppPostingLimit.objects.exists():
        AppPostingLimit.objects.all().delete()
    if not account.posting_blocked_code:
        return
    with transaction.atomic():
        rows = TikTokAccount.objects.filter(pk=account.pk).exclude(posting_blocked_code="")
        code = rows.values_list("posting_blocked_code", flat=True).first()
        if code is None:
            return
        rows.update(
            posting_blocked_code="",
            posting_blocked_since=None,
            posting_recheck_at=None,
            updated_at=timezone.now(),
        )
        audit_record(action="account.posting_unblocked", obj=account, changes={"code": code})
    account.posting_blocked_code, account.posting_blocked_since, account.posting_recheck_at = "", None, None


def posting_counts(*, account_ids: Any, now: dt.datetime | None = None) -> dict[uuid.UUID, Counts]:
    """What TikTok accepted from each account of `account_ids` (ids, or a query of them) over the
    last 24 hours, by account id (those
    that sent nothing are left out): posts whose create-post call succeeded, as TikTok's daily cap
    counts them, and those of them sent to the creator's inbox. One query over the last day's
    accepted calls alone (an index holds only those), however many posts the accounts ever had."""
    since = (now or timezone.now()) - dt.timedelta(hours=24)
    rows = (
        PublishAttempt.objects.filter(
            kind=AttemptKind.INIT,
            outcome=AttemptOutcome.OK,
            started_at__gte=since,
            post__account_id__in=account_ids,
        )
        .values("post__account_id")
        .annotate(
            posts=Count("post_id", distinct=True),
            inbox=Count("post_id", distinct=True, filter=Q(post__mode=PublishMode.INBOX)),
        )
        .values_list("post__account_id", "posts", "inbox")
    )
    return {account_id: Counts(posts, inbox) for account_id, posts, inbox in rows}


@dataclass(frozen=True)
class Counts:
    posts: int = 0
    inbox: int = 0


def with_posting_counts(
    accounts: list[TikTokAccount], *, now: dt.datetime | None = None
) -> list[TikTokAccount]:
    """`accounts`, each given `posts_last_24h` and `inbox_shares_last_24h` (see posting_counts)."""
    counts = posting_counts(account_ids=[account.pk for account in accounts], now=now)
    for account in accounts:
        found = counts.get(account.pk, Counts())
        account.posts_last_24h, account.inbox_shares_last_24h = found.posts, found.inbox  # type: ignore[attr-defined]
    return accounts
