"""Every URL of the agency site, walked from the URL configuration, with the people who must
not reach an object: a user of another agency, a user of this agency without permission on it,
a client reviewer of another account, and an anonymous visitor.

Each GET and POST must answer 404, the login page, or "method not allowed", and no page may
show the object's data; afterwards nothing the walk could have changed has changed. A new URL
is walked as soon as it exists; one whose parameters this file cannot fill fails the walk until
it learns them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.analytics.models import AccountSnapshot, VideoSnapshot
from apps.api.keys import api_key_create
from apps.api.models import ApiKey, MediaUpload
from apps.audit.models import AuditExport, AuditLog
from apps.captions.models import CaptionSnippet, SnippetKind
from apps.comments.models import Comment, Visibility
from apps.comments.services import comment_create
from apps.common.outbox import notification_emit
from apps.exports.models import AgencyExport, ExportStatus
from apps.imports.models import PostImport
from apps.media.models import LibraryKind, MediaItem
from apps.media.storage import media_storage
from apps.notifications.models import ChatDelivery, ChatWebhook, DeliveryStatus, Notification
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostMedia, PostStatus, PublishAttempt
from apps.queues.models import QueueSlot
from apps.reviews.models import ClientLink, ConsentRecord, LinkKind
from apps.reviews.services import client_link_create
from apps.team.models import Invitation
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory

pytestmark = pytest.mark.django_db

# What only someone allowed to see account A's objects may read.
SECRET_CAPTION = "Unreleased spring collection teaser 7Q2X"
SECRET_USERNAME = "secretclientaccount"
SECRET_CLIENT = "Acme Confidential Holdings"
SECRET_FILE = "spring-teaser-master.mp4"
SECRET_INVITEE = "future.hire.7q2x@alpha.example"
MARKERS = (SECRET_CAPTION, SECRET_USERNAME, SECRET_CLIENT, SECRET_FILE, SECRET_INVITEE)
# Signing out is walked too; the person then signs in again.
SIGNS_OUT = {"logout", "admin:logout"}
# (401: the API, which takes no session, asks for a key)
DENIED = {401, 403, 404, 405}


@dataclass
class Objects:
    account: TikTokAccount
    other_account: TikTokAccount
    post: Post
    media: PostMedia
    attempt: PublishAttempt
    snapshot: AccountSnapshot
    video: VideoSnapshot
    invitation: Invitation
    member: User
    audit_entry: AuditLog
    notification: Notification
    webhook: ChatWebhook
    delivery: ChatDelivery
    api_key: ApiKey
    upload: MediaUpload
    export: AgencyExport
    link: ClientLink
    post_import: PostImport
    slot: QueueSlot | None = None
    snippet: CaptionSnippet | None = None
    comment: Comment | None = None
    audit_export: AuditExport | None = None
    library_item: MediaItem | None = None


def _objects(alpha: Agency, owner_email: str = "owner@shared.example") -> Objects:
    """One of each object a URL can name, in `alpha` (also seeds tests/browser/test_phone_width.py)."""
    with schema_context(alpha.schema_name):
        owner = User.objects.get(email=owner_email)
        account = TikTokAccountFactory(username=SECRET_USERNAME, client_label=SECRET_CLIENT)
        other_account = TikTokAccountFactory(username="visibleelsewhere", client_label="Other client")
        post = PostFactory(
            account=account,
            caption=SECRET_CAPTION,
            status=PostStatus.PENDING_APPROVAL,
            scheduled_at=timezone.now() + dt.timedelta(hours=3),
            # written by someone else, so the owner may approve it (nobody approves their own post)
            created_by=User.objects.create_user("author@shared.example", OWNER_PASSWORD, role=Role.EDITOR),
        )
        # The post's video, in the media library by its secret name
        library_item = MediaItem.objects.create(
            kind=LibraryKind.VIDEO,
            name=SECRET_FILE,
            labels=[SECRET_CLIENT.lower()],
            file="posts/video/example.mp4",
            size_bytes=1_000_000,
            mime_type="video/mp4",
            sha256="0" * 64,
            created_by=owner,
        )
        media = PostMediaFactory(
            post=post, original_name=SECRET_FILE, created_by=owner, library_item=library_item
        )
        now = timezone.now()
        attempt = PublishAttempt.objects.create(
            post=post,
            attempt_number=1,
            kind=AttemptKind.CREATOR_INFO,
            started_at=now,
            finished_at=now,
            outcome=AttemptOutcome.OK,
        )
        snapshot = AccountSnapshot.objects.create(account=account, date=timezone.localdate(), followers=5)
        video = VideoSnapshot.objects.create(
            account=account, video_id="7" * 19, date=timezone.localdate(), title=SECRET_CAPTION
        )
        invitation = Invitation.objects.create(
            email=SECRET_INVITEE,
            role=Role.EDITOR,
            token_hash="a" * 64,
            expires_at=now + dt.timedelta(days=7),
            invited_by=owner,
        )
        member = User.objects.create_user("quiet.member@alpha.example", OWNER_PASSWORD, role=Role.MANAGER)
        entry = AuditLog.objects.filter(actor=owner).first() or AuditLog.objects.create(
            action="test.marker", actor=owner
        )
        # The owner hears the secret post failed; an admin set up a chat webhook.
        notification_emit(kind="post_failed", obj=post, key="walk", message=SECRET_CAPTION)
        notification = Notification.objects.get(recipient=owner, channel="in_app")
        webhook = ChatWebhook.objects.create(
            name=SECRET_CLIENT, style="slack", url="https://chat.example/hook"
        )
        delivery = ChatDelivery.objects.create(
            webhook=webhook, is_test=True, status=DeliveryStatus.FAILED, next_attempt_at=now
        )
        api_key, _ = api_key_create(name=SECRET_CLIENT, role=Role.EDITOR, expires_at=None, by=owner)
        upload = MediaUpload.objects.create(
            created_by=owner,
            account=account,
            filename=SECRET_FILE,
            content_type="video/mp4",
            size=10_000_000,
            part_bytes=8 * 1024 * 1024,
        )
        export = AgencyExport.objects.create(requested_by=owner)
        link, _ = client_link_create(
            kind=LinkKind.REVIEW, client_label=SECRET_CLIENT, days=7, posts=[post], by=owner
        )
        post_import = PostImport.objects.create(
            created_by=owner,
            file_name=SECRET_FILE,
            headers=["Account", "Caption"],
            rows=[[SECRET_USERNAME, SECRET_CAPTION]],
            mapping={"account": 0, "caption": 1},
            mapped=True,
        )
        slot = QueueSlot.objects.create(account=account, weekday=1, local_time=dt.time(18))
        objects = Objects(
            account,
            other_account,
            post,
            media,
            attempt,
            snapshot,
            video,
            invitation,
            member,
            entry,
            notification,
            webhook,
            delivery,
            api_key,
            upload,
            export,
            link,
            post_import,
        )
        objects.slot = slot
        objects.library_item = library_item
        objects.snippet = CaptionSnippet.objects.create(
            kind=SnippetKind.TEMPLATE, name=SECRET_CLIENT, text=SECRET_CAPTION, client_label=SECRET_CLIENT
        )
        objects.comment = comment_create(
            post=post, body=f"Internal: {SECRET_CAPTION}", visibility=Visibility.INTERNAL, by=owner
        )
        # A large audit export, ready, whose file holds the secret caption
        writer = media_storage().open_writer("audit-exports/walk.csv", content_type="text/csv")
        body = f"object\n{SECRET_CAPTION}\n".encode()
        writer.write(body)
        writer.complete()
        objects.audit_export = AuditExport.objects.create(
            requested_by=owner,
            up_to=timezone.now(),
            status=ExportStatus.READY,
            file_name="audit-exports/walk.csv",
            size_bytes=len(body),
            expires_at=timezone.now() + dt.timedelta(days=7),
        )
        return objects


# --- The URL configuration, walked ---


def _patterns(resolver: URLResolver, namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            inner = f"{namespace}:{item.namespace}" if namespace and item.namespace else item.namespace
            yield from _patterns(item, inner or namespace)
        elif item.name:
            yield (f"{namespace}:{item.name}" if namespace else item.name), item


def _admin_object(name: str, objects: Objects) -> str:
    """The object an admin URL names, by its model (admin:<app>_<model>_<view>)."""
    by_model = {
        "accounts_tiktokaccount": objects.account.pk,
        "posts_post": objects.post.pk,
        "posts_postmedia": objects.media.pk,
        "posts_publishattempt": objects.attempt.pk,
        "analytics_accountsnapshot": objects.snapshot.pk,
        "analytics_videosnapshot": objects.video.pk,
        "team_invitation": objects.invitation.pk,
        "users_user": objects.member.pk,
        "audit_auditlog": objects.audit_entry.pk,
        "auth_group": 1,
    }
    for model, pk in by_model.items():
        if name.startswith(f"admin:{model}_"):
            return str(pk)
    raise AssertionError(f"{name}: which object does it show? Add its model to _admin_object.")


def _value(name: str, kwarg: str, objects: Objects) -> str:
    app = name.split(":")[0] if ":" in name else ""
    if kwarg == "pk":
        if app == "posts":
            return str(objects.media.pk if "media" in name else objects.post.pk)
        if app == "accounts":
            return str(objects.account.pk)
        if app == "team":
            return str(objects.invitation.pk if "invitation" in name else objects.member.pk)
        if app == "notifications":
            return str(objects.webhook.pk if "webhook" in name else objects.notification.pk)
        if app == "api_keys":
            return str(objects.api_key.pk)
        if app == "exports":
            return str(objects.export.pk)
        if app == "imports":
            return str(objects.post_import.pk)
        if app == "captions" and objects.snippet is not None:
            return str(objects.snippet.pk)
        if app == "comments" and objects.comment is not None:
            return str(objects.comment.pk)
        if app == "audit" and objects.audit_export is not None:
            return str(objects.audit_export.pk)
        if app == "media" and objects.library_item is not None:
            return str(objects.library_item.pk)
    if kwarg == "upload_id":
        return str(objects.upload.pk)
    if kwarg == "media_id":
        return str(objects.media.pk)
    if kwarg == "account_id":
        return str(objects.account.pk)
    if kwarg == "post_id":
        return str(objects.post.pk)
    if kwarg == "link_id":
        return str(objects.link.pk)
    if kwarg == "slot_id" and objects.slot is not None:
        return str(objects.slot.pk)
    if kwarg == "delivery_pk":
        return str(objects.delivery.pk)
    if kwarg == "object_id":
        return _admin_object(name, objects) if name != "admin:view_on_site" else str(objects.post.pk)
    if kwarg == "content_type_id":
        return "1"
    if kwarg in ("object_pk",):
        return str(objects.account.pk)
    if kwarg in ("id", "user_id"):
        return str(objects.member.pk)
    if kwarg == "group_id":
        return "1"
    if kwarg == "app_label":
        return "posts"
    if kwarg in ("token", "uidb64"):
        return "not-a-real-token-" + uuid.uuid4().hex
    raise AssertionError(f"{name}: cannot fill <{kwarg}>. Teach _value which object it names.")


def agency_urls(objects: Objects) -> list[tuple[str, str, bool]]:
    """(name, path, names an object) for every named URL of the agency site."""
    urls = []
    for name, pattern in _patterns(get_resolver(settings.ROOT_URLCONF)):
        kwargs = list(pattern.pattern.regex.groupindex)
        if name == "admin:app_list":
            kwargs = ["app_label"]
        values = {kwarg: _value(name, kwarg, objects) for kwarg in kwargs}
        # A token in the path is a public entry point (a welcome, reset or invitation link):
        # a made-up one must show no data, like every page, but may answer its own "invalid" page.
        names_object = any(kwarg not in ("app_label", "token", "uidb64") for kwarg in kwargs)
        urls.append((name, reverse(name, kwargs=values or None), names_object))
    return urls


def _post_body(objects: Objects) -> dict[str, Any]:
    """Everything a form of ours might read, pointing at account A's objects."""
    later = timezone.now() + dt.timedelta(days=2)
    return {
        "post": str(objects.post.pk),
        "account": str(objects.account.pk),
        "media_id": str(objects.media.pk),
        "comment": "Looks wrong",
        "body": "Taken over",
        "visibility": "client",
        "author_name": "Intruder",
        "requires_approval": "on",
        "published_post_id": "7" * 19,
        "date": later.date().isoformat(),
        "scheduled_date": later.date().isoformat(),
        "scheduled_time": "10:00:00",
        "time_zone": "UTC",
        "caption": "Taken over",
        "privacy_level": "PUBLIC_TO_EVERYONE",
        "action": "schedule",
        "role": Role.OWNER,
        "email": "intruder@example.com",
    }


# --- The people who must not get in ---


def _signed_in(agency: Agency, email: str) -> Client:
    client = client_for(agency)
    response = client.post("/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302, f"{email} could not sign in"
    return client


def _is_login_page(response: Any) -> bool:
    location = response.get("Location", "") if response.status_code == 302 else ""
    return location.startswith(("/login/", "/admin/login/"))


def _refused(response: Any) -> bool:
    """404, 403, 405, the login page, or the admin's "no such object" (back to its index)."""
    if response.status_code in DENIED or _is_login_page(response):
        return True
    return response.status_code == 302 and response.get("Location") == "/admin/"


def _persona(kind: str, alpha: Agency, beta: Agency, objects: Objects) -> tuple[Client, Any]:
    """A client for `kind`, and how to sign it in again after a sign-out URL."""
    if kind == "anonymous":
        return client_for(alpha), None
    if kind == "other_agency":
        # Beta's owner, on beta's own site, asking for alpha's ids.
        return _signed_in(beta, "owner@shared.example"), lambda: _signed_in(beta, "owner@shared.example")
    if kind == "other_agency_session":
        # Beta's owner's session presented to alpha's site.
        client = _signed_in(beta, "owner@shared.example")
        client.defaults["HTTP_HOST"] = client_for(alpha).defaults["HTTP_HOST"]
        return client, None
    with schema_context(alpha.schema_name):
        if kind == "no_permission":
            User.objects.create_user("editor.without.access@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
            email = "editor.without.access@alpha.example"
        else:
            reviewer = User.objects.create_user("client.b@alpha.example", OWNER_PASSWORD, role=Role.CLIENT)
            access_set(user=reviewer, account=objects.other_account, perms={Perm.VIEW, Perm.APPROVE}, by=None)
            email = "client.b@alpha.example"
    return _signed_in(alpha, email), lambda: _signed_in(alpha, email)


def _snapshot(alpha: Agency, objects: Objects) -> dict[str, Any]:
    with schema_context(alpha.schema_name):
        post = Post.all_objects.get(pk=objects.post.pk)
        account = TikTokAccount.all_objects.get(pk=objects.account.pk)
        invitation = Invitation.all_objects.get(pk=objects.invitation.pk)
        member = User.all_objects.get(pk=objects.member.pk)
        return {
            "post": (post.status, post.caption, post.scheduled_at, post.deleted_at, post.review_outcome),
            "account": (account.status, account.requires_approval, account.deleted_at),
            "invitation": (invitation.revoked_at, invitation.accepted_at, invitation.token_hash),
            "member": (member.role, member.is_active, member.deleted_at),
            "link": ClientLink.objects.get(pk=objects.link.pk).revoked_at,
            "consent": ConsentRecord.objects.count(),
            "counts": (
                Post.all_objects.count(),
                PostMedia.all_objects.count(),
                User.all_objects.count(),
                Invitation.all_objects.count(),
                # Sign-ins and report downloads (a client reviewer may read their own report) are
                # recorded without changing anything.
                AuditLog.objects.exclude(action__startswith="login.")
                .exclude(action="report.downloaded")
                .count(),
                QueueSlot.objects.count(),
                list(CaptionSnippet.objects.values_list("name", "text", "client_label")),
            ),
            "imports": list(PostImport.objects.values_list("status", "mapping", "mode")),
            "comments": list(Comment.all_objects.values_list("body", "visibility", "deleted_at")),
        }


@pytest.mark.parametrize(
    "kind",
    ["anonymous", "other_agency", "other_agency_session", "no_permission", "client_of_another_account"],
)
def test_no_url_shows_or_changes_an_object_to_someone_not_allowed(
    alpha: Agency, beta: Agency, kind: str
) -> None:
    objects = _objects(alpha)
    client, sign_in_again = _persona(kind, alpha, beta, objects)
    urls = agency_urls(objects)
    before = _snapshot(alpha, objects)
    body = _post_body(objects)
    problems: list[str] = []

    for name, path, names_object in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(path, body) if method == "post" else client.get(path)
            content = b"".join(response) if response.streaming else response.content
            page = content.decode(errors="replace")
            shown = [marker for marker in MARKERS if marker in page]
            if shown:
                problems.append(f"{method.upper()} {path} ({name}) showed {shown}")
            if names_object and not _refused(response):
                problems.append(f"{method.upper()} {path} ({name}) answered {response.status_code}")
            if name in SIGNS_OUT and sign_in_again is not None:
                client = sign_in_again()

    assert not problems, "\n".join(problems)
    assert _snapshot(alpha, objects) == before
    # The walk covered the pages of every area (a broken walker would pass vacuously).
    walked = {name.split(":")[0] for name, _, _ in urls}
    assert {"posts", "accounts", "schedule", "analytics", "admin", "home", "settings"} <= walked


def test_the_owner_does_see_what_the_walk_hides(alpha: Agency) -> None:
    """The markers are on the pages for someone allowed: the walk's silence means something."""
    objects = _objects(alpha)
    client = _signed_in(alpha, "owner@shared.example")
    assert SECRET_CAPTION in client.get(f"/posts/{objects.post.pk}/").content.decode()
    assert f"Internal: {SECRET_CAPTION}" in client.get(f"/comments/posts/{objects.post.pk}/").content.decode()
    assert SECRET_CAPTION in client.get("/posts/approvals/").content.decode()
    assert SECRET_USERNAME in client.get("/accounts/").content.decode()
    assert SECRET_CLIENT in client.get("/accounts/").content.decode()
    assert client.get(f"/posts/media/{objects.media.pk}/file/").status_code in (200, 404)


def test_a_grant_opens_exactly_one_account(alpha: Agency) -> None:
    """An editor granted account A sees A's post, not B's; the grant's removal closes it again."""
    objects = _objects(alpha)
    with schema_context(alpha.schema_name):
        editor = User.objects.create_user("editor.a@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        other_post = PostFactory(account=objects.other_account, caption="Other client's launch")
        access_set(user=editor, account=objects.account, perms={Perm.VIEW, Perm.DRAFT}, by=None)
    client = _signed_in(alpha, "editor.a@alpha.example")

    listing = client.get("/posts/").content.decode()
    assert SECRET_CAPTION in listing and "Other client&#x27;s launch" not in listing
    assert client.get(f"/posts/{objects.post.pk}/").status_code == 200
    assert client.get(f"/posts/{other_post.pk}/").status_code == 404
    # Viewing and drafting, not approving: the approvals queue is empty for them.
    assert SECRET_CAPTION not in client.get("/posts/approvals/").content.decode()
    assert client.post(f"/posts/{objects.post.pk}/approve/").status_code == 404

    with schema_context(alpha.schema_name):
        access_set(user=editor, account=objects.account, perms=set(), by=None)
    assert client.get(f"/posts/{objects.post.pk}/").status_code == 404
    assert SECRET_CAPTION not in client.get("/posts/").content.decode()


def test_a_deactivated_account_holder_loses_every_account(alpha: Agency) -> None:
    objects = _objects(alpha)
    with schema_context(alpha.schema_name):
        manager = User.objects.create_user("manager.a@alpha.example", OWNER_PASSWORD, role=Role.MANAGER)
        access_set(user=manager, account=objects.account, perms=set(Perm), by=None)
    client = _signed_in(alpha, "manager.a@alpha.example")
    assert client.get(f"/posts/{objects.post.pk}/").status_code == 200
    with schema_context(alpha.schema_name):
        User.objects.get(pk=manager.pk).delete()
        assert TikTokAccount.objects.get(pk=objects.account.pk).status == AccountStatus.ACTIVE
    response = client.get(f"/posts/{objects.post.pk}/")
    assert _is_login_page(response)
