"""Bulk import of posts from a CSV or XLSX file, and the export of posts in the same columns.

The steps: `import_upload` reads the file and keeps its cells (bound to the uploader),
`import_map` records which column holds which field, `rows_check` validates every row with the
composer's own form and rules (apps.posts.forms.ComposeForm, apps.posts.services), `import_confirm`
queues the import and a worker (`imports_run`) saves the good rows through the composer's
service (`post_save`, so approval rules apply), writing its progress as it goes, and records one
audit entry with the counts. Nothing is saved before the person confirms; rows with errors are
left out, and said so.

A row names its video by its name in the agency's media library (`media_by_name`); each new
post reuses the library's stored object (apps.posts.services.media_from_library), so nothing is
stored again, and the library lists the post where the item is used.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from django import forms
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format

from apps.accounts.models import SECRET_FIELDS, TikTokAccount
from apps.accounts.posting_limits import DAILY_CAP
from apps.audit.services import audit_record
from apps.imports.columns import BY_KEY, FIELDS, SWITCHES, mapping_guess
from apps.imports.files import Sheet, sheet_read
from apps.imports.models import ImportMode, ImportStatus, PostImport
from apps.media.models import LibraryKind, MediaItem
from apps.media.selectors import library_items_for
from apps.posts.forms import DRAFT, SCHEDULE, ComposeForm, time_zone_choices
from apps.posts.models import MediaKind, MediaType, Post, PostMedia, PostStatus, PrivacyLevel
from apps.posts.selectors import accounts_for_composer
from apps.posts.services import (
    CreatorCheck,
    PostContent,
    PostStateError,
    PostValidationError,
    creator_check,
    media_from_library,
    post_save,
    schedule_errors,
)
from apps.users.models import User
from tenants.models import current_agency

logger = logging.getLogger(__name__)

# Posts that count towards an account's day at TikTok once they go out.
PLANNED = (PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL, PostStatus.PUBLISHING, PostStatus.PUBLISHED)
# A spreadsheet runs a cell starting with one of these as a formula: the export quotes it with
# an apostrophe, which the import takes off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
YES = frozenset({"yes", "y", "true", "1", "on", "x", "✓"})
NO = frozenset({"no", "n", "false", "0", "off", ""})
PRIVACY_BY_TEXT = {
    **{str(label).lower(): value for value, label in PrivacyLevel.choices},
    **{value.lower(): value for value in PrivacyLevel.values},
}
# Where the composer's form puts each error, as the import's fields.
FORM_FIELDS = {
    "account": "account",
    "caption": "caption",
    "scheduled_date": "date",
    "scheduled_at": "date",
    "scheduled_time": "time",
    "time_zone": "time_zone",
    "privacy_level": "privacy",
    "video": "media",
    "action": "date",
    **{switch: switch for switch in SWITCHES},
}


class ImportRefused(Exception):
    """The import cannot go on; the message says why."""


# --- Uploading and mapping ---


def import_upload(*, by: User, name: str, data: bytes) -> PostImport:
    """Read the file (apps.imports.files.FileRefused when it cannot be imported) and keep its
    cells for `by`, with the columns guessed from its header line."""
    sheet: Sheet = sheet_read(name=name, data=data)
    return PostImport.objects.create(
        created_by=by,
        file_name=(name or "posts.csv")[:255],
        headers=sheet.headers,
        rows=sheet.rows,
        mapping=mapping_guess(sheet.headers),
        rows_total=len(sheet.rows),
    )


def import_map(*, post_import: PostImport, mapping: dict[str, int], mode: str) -> PostImport:
    """Record which column holds which field (field → column index) and how to import."""
    if post_import.status != ImportStatus.UPLOADED:
        raise ImportRefused("This file has been imported already; upload it again to import it again.")
    errors = mapping_errors(mapping, post_import.headers)
    if errors:
        raise ImportRefused(" ".join(errors))
    post_import.mapping = mapping
    post_import.mode = mode if mode in ImportMode.values else ImportMode.DRAFT
    post_import.mapped = True
    post_import.save(update_fields=["mapping", "mode", "mapped", "updated_at"])
    return post_import


def mapping_errors(mapping: dict[str, int], headers: list[str]) -> list[str]:
    errors = []
    if "account" not in mapping:
        errors.append("Choose the column that holds the account: every post needs one.")
    used = Counter(mapping.values())
    for index, times in used.items():
        if times > 1 and 0 <= index < len(headers):
            errors.append(f"The column “{headers[index]}” is chosen for {times} fields; choose it for one.")
    return errors


# --- The library of stored media, by name ---


def media_by_name(*, user: User, names: Iterable[str]) -> dict[str, MediaItem]:
    """The library videos `user` may use, by name (the newest of each name): the items of
    apps.media.selectors.library_items_for."""
    wanted = {name for name in names if name}
    if not wanted:
        return {}
    items = (
        library_items_for(user)
        .filter(kind=LibraryKind.VIDEO, name__in=wanted)
        .exclude(file="")
        .order_by("name", "-created_at")
    )
    found: dict[str, MediaItem] = {}
    for item in items:
        found.setdefault(item.name, item)
    return found


# --- Checking every row ---


class _Given(forms.Field):
    """The composer's account field, already resolved from the row's username."""

    def __init__(self) -> None:
        super().__init__(required=False)
        self.account: TikTokAccount | None = None

    def clean(self, value: Any) -> TikTokAccount | None:
        return self.account


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(name for name, _ in time_zone_choices())


class _ZoneName(forms.ChoiceField):
    """The composer's time zone choice (the same names, the same message), looked up in a set:
    500 lines would otherwise copy and scan its 600 choices each."""

    def valid_value(self, value: Any) -> bool:
        return value in _zone_names()


class ImportRowForm(ComposeForm):
    """The composer's form for one row; only the account arrives differently (by username,
    among the same accounts: those the person may draft for)."""

    account = _Given()  # type: ignore[assignment]
    time_zone = _ZoneName(error_messages=ComposeForm.base_fields["time_zone"].error_messages)

    def __init__(self, data: dict[str, Any], *, account: TikTokAccount | None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(_Given, self.fields["account"]).account = account


@dataclass
class RowCheck:
    """One row of the file: its cells by field, and what is wrong with it (field → message; the
    key "" for a problem whose field has no column)."""

    number: int  # the line in the file (the header is line 1)
    cells: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    content: PostContent | None = None
    when: dt.datetime | None = None
    zone: str = ""
    media: MediaItem | None = None
    schedule: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, key: str) -> str:
        return self.errors.get(key, "")


@dataclass
class Preview:
    rows: list[RowCheck]
    warnings: list[str]
    refusal: str = ""
    creators: dict[Any, CreatorCheck] = field(default_factory=dict)

    @property
    def good(self) -> list[RowCheck]:
        return [row for row in self.rows if row.ok]

    @property
    def bad(self) -> list[RowCheck]:
        return [row for row in self.rows if not row.ok]


def _handle(text: str) -> str:
    return text.strip().lstrip("@").lower()


def _unquoted(text: str) -> str:
    """A cell without the apostrophe the export put before a formula-like start."""
    if text.startswith("'") and text[1:2] and text[1:2] in FORMULA_START:
        return text[1:]
    return text


def rows_check(*, post_import: PostImport, user: User) -> Preview:
    """Every row checked with the composer's rules, as the import would save it now. Asks TikTok
    about each account once (creator_info), as the composer does."""
    mapping = post_import.mapping
    accounts: dict[str, TikTokAccount] = {}
    for account in accounts_for_composer(user):
        accounts[_handle(account.username)] = account
        accounts[str(account.pk)] = account
    media_column = mapping.get("media")
    names = (
        {_unquoted(row[media_column].strip()) for row in post_import.rows}
        if media_column is not None
        else set()
    )
    library = media_by_name(user=user, names=names)
    creators: dict[Any, CreatorCheck] = {}
    zone = user.time_zone or "UTC"
    checks = []
    for offset, raw in enumerate(post_import.rows):
        cells = {
            key: _unquoted(raw[index].strip()) if index < len(raw) else "" for key, index in mapping.items()
        }
        checks.append(
            _row_check(
                offset + 2,
                cells,
                user=user,
                mode=post_import.mode,
                accounts=accounts,
                library=library,
                creators=creators,
                default_zone=zone,
            )
        )
    refusal = current_agency().unverified_refusal if post_import.mode == ImportMode.SCHEDULE else ""
    return Preview(rows=checks, warnings=daily_cap_warnings(checks), refusal=refusal, creators=creators)


def _row_check(
    number: int,
    cells: dict[str, str],
    *,
    user: User,
    mode: str,
    accounts: dict[str, TikTokAccount],
    library: dict[str, MediaItem],
    creators: dict[Any, CreatorCheck],
    default_zone: str,
) -> RowCheck:
    check = RowCheck(number=number, cells=cells)
    errors: dict[str, str] = {}
    named = cells.get("account", "")
    account = accounts.get(_handle(named)) if named else None
    if not named:
        errors["account"] = "Name the account to post to (its TikTok username)."
    elif account is None:
        errors["account"] = (
            f"“{named}” is not an account you may draft posts for. Check its username on the Accounts page."
        )
    data: dict[str, Any] = {
        "caption": cells.get("caption", ""),
        "mode": "direct",
        "media_type": MediaType.VIDEO,
        "scheduled_date": cells.get("date", ""),
        "scheduled_time": cells.get("time", ""),
        "time_zone": cells.get("time_zone", "") or default_zone,
    }
    privacy = cells.get("privacy", "")
    data["privacy_level"] = PRIVACY_BY_TEXT.get(privacy.lower(), privacy)
    for switch in SWITCHES:
        value = cells.get(switch, "").lower()
        if value in YES:
            data[switch] = "on"
        elif value not in NO:
            errors[switch] = f"Enter yes or no for {BY_KEY[switch].label.lower()}."
    media_name = cells.get("media", "")
    item = library.get(media_name) if media_name else None
    if media_name and item is None:
        errors["media"] = (
            f"No video named “{media_name}” in the agency's media library. Upload it there (Media) first."
        )
    media = media_from_library(item=item, by=user, save=False) if item is not None else None
    check.schedule = mode == ImportMode.SCHEDULE and bool(media_name)
    if mode == ImportMode.SCHEDULE and not media_name:
        check.notes.append("No media: imported as a draft.")
    data["action"] = SCHEDULE if check.schedule else DRAFT
    creator = None
    if account is not None:
        if account.pk not in creators:
            creators[account.pk] = creator_check(account=account)
        creator = creators[account.pk]
    form = ImportRowForm(data, account=account, user=user, creator=creator, media=media)
    valid = form.is_valid()
    for name, messages in form.errors.items():
        target = FORM_FIELDS.get(name, "")
        errors.setdefault(target, " ".join(str(m) for m in messages))
    if valid and account is not None and check.schedule:
        for name, message in schedule_errors(by=user, account=account, scheduled_at=form.when).items():
            errors.setdefault(FORM_FIELDS.get(name, ""), message)
    # An error on a field without a column is shown with the row, naming the field.
    check.errors = {}
    for key, message in errors.items():
        if key and key not in cells:
            label = BY_KEY[key].label if key in BY_KEY else key
            key, message = "", f"{label}: {message}"
        check.errors[key] = f"{check.errors[key]} {message}".strip() if key in check.errors else message
    if check.ok:
        check.content = form.content
        check.when = form.when
        check.zone = form.cleaned_data["time_zone"]
        check.media = item
    return check


def daily_cap_warnings(rows: list[RowCheck]) -> list[str]:
    """A sentence for each account and day on which the scheduled rows, with the posts already
    planned that day, pass TikTok's daily cap (about DAILY_CAP posts per creator)."""
    planned: dict[tuple[Any, dt.date], list[RowCheck]] = defaultdict(list)
    for row in rows:
        if row.ok and row.schedule and row.when is not None and row.content is not None:
            local = row.when.astimezone(zoneinfo.ZoneInfo(row.zone))
            planned[(row.content.account.pk, local.date())].append(row)
    if not planned:
        return []
    times = [row.when for group in planned.values() for row in group if row.when is not None]
    existing = list(
        Post.objects.filter(
            account_id__in={key[0] for key in planned},
            status__in=PLANNED,
            scheduled_at__gte=min(times) - dt.timedelta(days=1),
            scheduled_at__lte=max(times) + dt.timedelta(days=1),
        ).values_list("account_id", "scheduled_at")
    )
    warnings = []
    for (account_id, day), group in sorted(
        planned.items(), key=lambda item: (str(item[0][1]), str(item[0][0]))
    ):
        zone = zoneinfo.ZoneInfo(group[0].zone)
        already = sum(1 for pk, at in existing if pk == account_id and at.astimezone(zone).date() == day)
        total = already + len(group)
        if total > DAILY_CAP:
            account = group[0].content.account if group[0].content else None
            lines = ", ".join(str(row.number) for row in group)
            warnings.append(
                f"{account} would have {total} posts on {date_format(day, 'j F Y')} ({group[0].zone}): "
                f"{len(group)} from this file (lines {lines})"
                f"{f' and {already} already planned' if already else ''}. "
                f"TikTok lets a creator post about {DAILY_CAP} a day, counting other tools; posts past "
                "that are refused. Spread them over more days."
            )
    return warnings


# --- Importing ---


def import_confirm(*, post_import: PostImport, by: User) -> PostImport:
    """Queue the import of the file's good rows (a worker saves them, `import_run`)."""
    from apps.imports.tasks import imports_run

    with transaction.atomic():
        locked = PostImport.objects.select_for_update().get(pk=post_import.pk)
        if locked.status != ImportStatus.UPLOADED:
            raise ImportRefused("This file is being imported or has been imported already.")
        if not locked.mapped:
            raise ImportRefused("Choose the columns first.")
        locked.status = ImportStatus.QUEUED
        locked.rows_done = 0
        locked.save(update_fields=["status", "rows_done", "updated_at"])
        transaction.on_commit(lambda: imports_run.send(str(locked.pk)))
    return locked


def _progress(post_import: PostImport, **fields: Any) -> None:
    PostImport.objects.filter(pk=post_import.pk).update(updated_at=timezone.now(), **fields)


def import_run(import_id: str) -> PostImport | None:
    """Save the good rows of a queued import, each through the composer's service, in a
    transaction of its own (a row that became wrong since the preview is left out, saying why).
    One audit entry for the whole import, with its counts."""
    claimed = PostImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.IMPORTING, updated_at=timezone.now()
    )
    post_import = PostImport.objects.select_related("created_by").filter(pk=import_id).first()
    if not claimed or post_import is None:
        return post_import  # gone, or taken already (a redelivered message)
    user = post_import.created_by
    post_ids: list[str] = []
    statuses: Counter[str] = Counter()
    left_out: list[dict[str, Any]] = []
    try:
        preview = rows_check(post_import=post_import, user=user)
        if preview.refusal:
            raise ImportRefused(preview.refusal)
        good = preview.good
        left_out = [{"line": row.number, "why": " ".join(row.errors.values())} for row in preview.bad]
        _progress(post_import, rows_total=len(good), rows_done=0, warnings=preview.warnings)
        for done, row in enumerate(good, start=1):
            try:
                post = _row_import(row, user=user, creators=preview.creators)
            except (PostValidationError, PostStateError) as exc:
                why = " ".join(exc.errors.values()) if isinstance(exc, PostValidationError) else str(exc)
                left_out.append({"line": row.number, "why": why})
            else:
                post_ids.append(str(post.pk))
                statuses[post.status] += 1
            _progress(post_import, rows_done=done)
    except Exception as exc:
        logger.exception("Import %s failed", post_import.pk)
        reason = str(exc) if isinstance(exc, ImportRefused) else "Something went wrong while importing."
        return _finish(post_import, user, ImportStatus.FAILED, post_ids, statuses, left_out, error=reason)
    return _finish(post_import, user, ImportStatus.DONE, post_ids, statuses, left_out)


def _row_import(row: RowCheck, *, user: User, creators: dict[Any, CreatorCheck]) -> Post:
    if row.content is None:
        raise PostValidationError({"": "This line has errors."})
    with transaction.atomic():
        media = media_from_library(item=row.media, by=user) if row.media is not None else None
        return post_save(
            post=None,
            content=row.content,
            media=media,
            by=user,
            scheduled_at=row.when,
            time_zone=row.zone,
            schedule=row.schedule,
            creator=creators.get(row.content.account.pk),
        )


def _finish(
    post_import: PostImport,
    user: User,
    status: str,
    post_ids: list[str],
    statuses: Counter[str],
    left_out: list[dict[str, Any]],
    *,
    error: str = "",
) -> PostImport:
    counts = {
        "imported": len(post_ids),
        "draft": statuses[PostStatus.DRAFT],
        "scheduled": statuses[PostStatus.SCHEDULED],
        "pending_approval": statuses[PostStatus.PENDING_APPROVAL],
        "left_out": len(left_out),
    }
    with transaction.atomic():
        _progress(
            post_import,
            status=status,
            counts=counts,
            post_ids=post_ids,
            left_out=sorted(left_out, key=lambda item: item["line"]),
            error=error,
            finished_at=timezone.now(),
        )
        post_import.refresh_from_db()
        audit_record(
            action="import.finished" if status == ImportStatus.DONE else "import.failed",
            actor=user,
            obj=post_import,
            changes={
                "file": post_import.file_name,
                "rows": len(post_import.rows),
                "mode": post_import.mode,
                **counts,
            },
        )
    return post_import


# --- Exporting, in the same columns ---


EXPORT_HEADERS = [f.label for f in FIELDS]
PRIVACY_LABELS = {value: str(label) for value, label in PrivacyLevel.choices}


def posts_for_export(posts: QuerySet[Post]) -> QuerySet[Post]:
    """`posts` with their account and their video's file name, in the same query."""
    # The video's library name (which the import reads back), else the uploaded file's.
    video = (
        PostMedia.objects.filter(post=OuterRef("pk"), kind=MediaKind.VIDEO)
        .annotate(shown=Coalesce("library_item__name", "original_name"))
        .values("shown")[:1]
    )
    return (
        posts.select_related("account")
        .defer(*(f"account__{name}" for name in SECRET_FIELDS))
        .annotate(video_name=Subquery(video))
    )


def _safe(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_START) else text


def export_lines(posts: Iterable[Post], *, default_zone: str) -> Iterator[list[str]]:
    """The header line, then a line per post in the columns the import reads."""
    yield EXPORT_HEADERS
    for post in posts:
        zone = post.schedule_time_zone or default_zone
        local = post.scheduled_at.astimezone(zoneinfo.ZoneInfo(zone)) if post.scheduled_at else None
        values = {
            "account": post.account.username or str(post.account_id),
            "caption": post.caption,
            "date": local.date().isoformat() if local else "",
            "time": local.strftime("%H:%M") if local else "",
            "time_zone": zone if local else "",
            "privacy": PRIVACY_LABELS.get(post.privacy_level, ""),
            "media": getattr(post, "video_name", None) or "",
            **{switch: "yes" if getattr(post, switch) else "no" for switch in SWITCHES},
        }
        yield [_safe(values[f.key]) for f in FIELDS]
