"""Media in the object store: one prefix per agency, nothing served outside the gate, uploads
streamed in and refused ones leaving nothing behind, request bodies bounded before anything
reads them, and deleting media (or a whole agency) deleting its objects.

Against the real S3 (SeaweedFS) that `make test` finds or starts, in a bucket of this run's own."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.test.html import parse_html
from django_tenants.utils import schema_context

from apps.accounts.permissions import Perm, access_set
from apps.media.storage import media_storage
from apps.posts.models import PostMedia
from apps.users.models import Role
from tenants.models import Agency
from tenants.services import agency_create, agency_delete, agency_purge
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory, UserFactory
from tests.mp4 import PNG_BYTES, mp4_bytes
from tests.test_composer import compose_data, uploaded_id

pytestmark = pytest.mark.django_db


class Tripwire:
    """A request body that records whether anything read it."""

    def __init__(self, data: bytes = b"x" * 1000) -> None:
        self.data = data
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        piece = (
            self.data[self.read_bytes :] if size < 0 else self.data[self.read_bytes : self.read_bytes + size]
        )
        self.read_bytes += len(piece)
        return piece

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def signed_in(agency: Agency, email: str = "owner@shared.example", **client: Any) -> Client:
    c = Client(HTTP_HOST=agency.primary_host, **client)
    assert c.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return c


def upload(client: Client, data: bytes, name: str = "clip.mp4") -> Any:
    return client.post("/posts/media/", {"video": SimpleUploadedFile(name, data, content_type="video/mp4")})


def stored(agency: Agency) -> list[str]:
    with schema_context(agency.schema_name):
        return media_storage().agency_names(agency.schema_name)


def error_text(response: Any) -> str:
    page = parse_html(response.content.decode())

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return
        yield node
        for child in node.children:
            yield from walk(child)

    for node in walk(page):
        if ("id", "video-error") in node.attributes:
            return " ".join(" ".join(str(c) for c in node.children).split())
    raise AssertionError("no video error shown")


def _owner(agency: Agency) -> Any:
    with schema_context(agency.schema_name):
        from apps.users.models import User

        return User.objects.get(email="owner@shared.example")


@pytest.fixture(autouse=True)
def _empty_prefixes(alpha: Agency, beta: Agency) -> None:
    """Objects outlive the rolled-back rows of earlier tests: start each test with none."""
    for agency in (alpha, beta):
        with schema_context(agency.schema_name):
            media_storage().delete_agency(agency.schema_name)


# --- One prefix per agency ---


def test_an_agencys_names_reach_only_its_own_objects(alpha: Agency, beta: Agency) -> None:
    # Given a video stored by alpha
    with schema_context(alpha.schema_name):
        name = media_storage().save("posts/video/only-alpha.mp4", ContentFile(b"alpha's video"))
        assert media_storage().read_range(name, 0, 4) == b"alpha"
    # Then the same name in beta is beta's (absent) object, a name climbing out is refused,
    # and outside any agency there is no media at all
    with schema_context(beta.schema_name):
        assert not media_storage().exists(name)
        with pytest.raises(SuspiciousFileOperation):
            media_storage().read_range(f"../{alpha.schema_name}/{name}", 0, 4)
        with pytest.raises(SuspiciousFileOperation):
            media_storage().exists(f"/{alpha.schema_name}/{name}/../../{alpha.schema_name}/{name}")
    with pytest.raises(SuspiciousFileOperation):
        media_storage().exists(name)
    assert stored(alpha) == [name] and stored(beta) == []


def test_another_agencys_key_is_never_served_through_the_gate(alpha: Agency, beta: Agency) -> None:
    # Given alpha's video, and a row in beta naming the very same key
    with schema_context(alpha.schema_name):
        name = media_storage().save("posts/video/secret.mp4", ContentFile(b"alpha's secret video"))
        alpha_media = PostMediaFactory(file=name, post=PostFactory())
    with schema_context(beta.schema_name):
        forged = PostMediaFactory(file=name)
    # When beta's owner opens it through the gate: there is nothing under beta's prefix
    assert signed_in(beta).get(f"/posts/media/{forged.pk}/file/").status_code == 404
    # And beta cannot name alpha's media row either
    assert signed_in(beta).get(f"/posts/media/{alpha_media.pk}/file/").status_code == 404
    # While alpha's owner gets a presigned URL under alpha's prefix
    response = signed_in(alpha).get(f"/posts/media/{alpha_media.pk}/file/")
    assert response.status_code == 302
    assert f"/{alpha.schema_name}/posts/video/secret.mp4?" in response["Location"]
    assert httpx.get(response["Location"]).content == b"alpha's secret video"


def test_the_gate_answers_404_to_whoever_may_not_see_the_post(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        shown, hidden = TikTokAccountFactory(), TikTokAccountFactory()
        editor = UserFactory(email="editor@alpha.example", role=Role.EDITOR)
        access_set(user=editor, account=shown, perms={Perm.VIEW}, by=None)
        name = media_storage().save("posts/video/hidden.mp4", ContentFile(b"not for the editor"))
        media = PostMediaFactory(file=name, post=PostFactory(account=hidden))
        visible = PostMediaFactory(
            file=media_storage().save("posts/video/shown.mp4", ContentFile(b"for the editor")),
            post=PostFactory(account=shown),
        )
    editor_client = signed_in(alpha, "editor@alpha.example")
    assert editor_client.get(f"/posts/media/{media.pk}/file/").status_code == 404
    assert editor_client.get(f"/posts/media/{visible.pk}/file/").status_code == 302
    assert client_for(alpha).get(f"/posts/media/{media.pk}/file/").status_code == 302  # to sign in
    assert "/login/" in client_for(alpha).get(f"/posts/media/{media.pk}/file/")["Location"]
    # The object store itself serves nothing without a signature
    assert httpx.get(f"{media_storage().endpoint_url}/{media_storage().bucket_name}/").status_code == 403  # type: ignore[attr-defined]


# --- Uploads: streamed in, refused ones leave nothing ---


def test_an_upload_is_streamed_in_hashed_and_probed_in_one_pass(alpha: Agency) -> None:
    # A video larger than one multipart part, its index (moov) at the end as cameras write it
    data = mp4_bytes(duration=9, width=720, height=1280, padding=9_000_000)
    ftyp_size = int.from_bytes(data[:4], "big")
    moov_size = int.from_bytes(data[ftyp_size : ftyp_size + 4], "big")
    data = data[:ftyp_size] + data[ftyp_size + moov_size :] + data[ftyp_size : ftyp_size + moov_size]

    response = upload(signed_in(alpha), data)

    assert response.status_code == 201, response.content.decode()
    with schema_context(alpha.schema_name):
        media = PostMedia.objects.get()
        assert (media.size_bytes, media.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert (media.width, media.height, str(media.duration_seconds)) == (720, 1280, "9.000")
        assert media_storage().read_range(media.file.name, 0, len(data) - 1) == data
    assert stored(alpha) == [media.file.name]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (PNG_BYTES, "This file is not an MP4, MOV or WebM video."),
        (b"not a video " * 100_000, "This file is not an MP4, MOV or WebM video."),
        (mp4_bytes(duration=0.5), "The video lasts 0.5 s; TikTok needs at least 1 second."),
        (b"", "The file is empty. Choose the video again."),
    ],
    ids=["png", "text", "too-short", "empty"],
)
def test_a_refused_upload_leaves_nothing_in_storage_or_the_database(
    alpha: Agency, data: bytes, message: str
) -> None:
    response = upload(signed_in(alpha), data)

    assert response.status_code == 400
    assert error_text(response).startswith(message)
    assert stored(alpha) == []
    with schema_context(alpha.schema_name):
        assert not PostMedia.all_objects.exists()


def test_an_upload_over_the_limit_stops_there_and_leaves_nothing(alpha: Agency, settings: Any) -> None:
    settings.MEDIA_UPLOAD_MAX_BYTES = 1_000_000
    client = signed_in(alpha)
    # A file over the limit, in a body the limit's room for the form still admits
    body = encode_multipart(BOUNDARY, {"video": SimpleUploadedFile("big.mp4", mp4_bytes(padding=1_900_000))})
    assert 1_900_000 < len(body) < 2_000_000
    tripwire = Tripwire(body)

    response = client.generic(
        "POST",
        "/posts/media/",
        **{"CONTENT_TYPE": MULTIPART_CONTENT, "wsgi.input": tripwire, "CONTENT_LENGTH": str(len(body))},
    )

    assert response.status_code == 400
    assert error_text(response) == "The video is larger than TikTok's limit of 4 GB."
    # Reading stopped at the limit instead of taking the rest of the body
    assert tripwire.read_bytes <= 1_000_000 + 512 * 1024 < len(body)
    # A body beyond the limit and its room for the form is refused before it is read
    tripwire = Tripwire()
    response = client.generic(
        "POST",
        "/posts/media/",
        **{"CONTENT_TYPE": MULTIPART_CONTENT, "wsgi.input": tripwire, "CONTENT_LENGTH": "2000001"},
    )
    assert response.status_code == 413 and tripwire.read_bytes == 0
    assert stored(alpha) == []
    with schema_context(alpha.schema_name):
        assert not PostMedia.all_objects.exists()


def test_an_upload_announcing_more_than_the_limit_is_refused_unread(alpha: Agency) -> None:
    tripwire = Tripwire()
    response = signed_in(alpha).generic(
        "POST",
        "/posts/media/",
        **{"CONTENT_TYPE": MULTIPART_CONTENT, "wsgi.input": tripwire, "CONTENT_LENGTH": str(5_000_000_000)},
    )
    assert response.status_code == 413
    assert b"accepts at most" in response.content
    assert tripwire.read_bytes == 0


def test_nothing_of_an_upload_is_read_before_sign_in_and_permission(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        UserFactory(email="viewer@alpha.example", role=Role.VIEWER)
    for client, status in (
        (client_for(alpha), 302),  # not signed in: to the sign-in page
        (signed_in(alpha, "viewer@alpha.example"), 404),  # may draft for no account
    ):
        for path in ("/posts/media/", "/posts/new/"):
            tripwire = Tripwire()
            response = client.generic(
                "POST",
                path,
                **{"CONTENT_TYPE": MULTIPART_CONTENT, "wsgi.input": tripwire, "CONTENT_LENGTH": "2000000000"},
            )
            assert response.status_code == status, path
            assert tripwire.read_bytes == 0, path
    assert stored(alpha) == []


def test_an_upload_failing_the_csrf_check_is_deleted(alpha: Agency) -> None:
    client = Client(HTTP_HOST=alpha.primary_host, enforce_csrf_checks=True)
    with schema_context(alpha.schema_name):
        client.force_login(_owner(alpha))
    client.get("/posts/new/")  # the CSRF cookie, but no token sent with the upload

    response = upload(client, mp4_bytes())

    assert response.status_code == 403
    assert stored(alpha) == []
    with schema_context(alpha.schema_name):
        assert not PostMedia.all_objects.exists()


def test_every_other_body_is_bounded_before_it_is_read(alpha: Agency) -> None:
    for client, path in (
        (client_for(alpha), "/login/"),
        (signed_in(alpha), "/settings/"),
        (client_for(None), "/webhooks/tiktok/"),
    ):
        tripwire = Tripwire()
        response = client.generic(
            "POST",
            path,
            **{
                "CONTENT_TYPE": "application/x-www-form-urlencoded",
                "wsgi.input": tripwire,
                "CONTENT_LENGTH": "1000001",
            },
        )
        assert response.status_code == 413, path
        assert tripwire.read_bytes == 0, path
    # A body within the limit is read as before
    assert client_for(alpha).post("/login/", {"username": "x@y.example", "password": "z"}).status_code == 200


# --- Deleting ---


def test_replacing_a_posts_video_keeps_the_old_one_in_the_library_until_it_is_deleted_there(
    alpha: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    client = signed_in(alpha)
    first, second = uploaded_id(client, mp4_bytes()), uploaded_id(client, mp4_bytes(duration=20))
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory()
        old_name, new_name = (PostMedia.objects.get(pk=pk).file.name for pk in (first, second))
    assert client.post("/posts/new/", compose_data(account, first, action="draft")).status_code == 302
    with schema_context(alpha.schema_name):
        post = PostMedia.objects.get(pk=first).post
    assert post is not None and stored(alpha) == sorted([old_name, new_name])

    with django_capture_on_commit_callbacks(execute=True):
        edited = client.post(f"/posts/{post.pk}/edit/", compose_data(account, second, action="draft"))

    assert edited.status_code == 302
    # The old video is no longer the post's, but every upload is kept in the media library
    assert stored(alpha) == sorted([old_name, new_name])
    with schema_context(alpha.schema_name):
        old_item = PostMedia.all_objects.get(pk=first).library_item
    assert old_item is not None
    page = client.get(f"/media/{old_item.pk}/").content.decode()
    assert "Not used" in page
    # Deleting it there removes the object
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/media/{old_item.pk}/delete/").status_code == 302
    assert stored(alpha) == [new_name]


def test_purging_an_agency_deletes_its_objects_and_no_one_elses(
    alpha: Agency, django_db_blocker: Any
) -> None:
    with schema_context(alpha.schema_name):
        kept = media_storage().save("posts/video/alpha-keeps.mp4", ContentFile(b"alpha"))
    agency = agency_create(
        slug="purged-media", name="Purged", owner_email="o@purged.example", owner_password=OWNER_PASSWORD
    )
    with schema_context(agency.schema_name):
        for n in range(3):
            media_storage().save(f"posts/video/{n}.mp4", ContentFile(b"gone"))
    assert len(stored(agency)) == 3

    agency_purge(agency=agency_delete(agency=agency))

    assert stored(agency) == []
    assert stored(alpha) == [kept]


def test_reading_ahead_passes_every_piece_in_order_and_the_error_where_it_happened() -> None:
    from apps.media.storage import read_ahead

    closed = []

    def stored(fail_after: int | None) -> Iterator[bytes]:
        try:
            for n in range(10):
                if n == fail_after:
                    raise OSError("the object store went away")
                yield bytes([n]) * 1000
        finally:
            closed.append(fail_after)

    assert b"".join(read_ahead(stored(None), depth=2)) == b"".join(bytes([n]) * 1000 for n in range(10))
    # A read that fails mid-chunk fails the chunk: never a short body sent as if complete
    got = []
    with pytest.raises(OSError, match="went away"):
        for piece in read_ahead(stored(3), depth=2):
            got.append(piece)
    assert len(got) == 3
    # A sender that stops early (TikTok refused the chunk) stops the read and releases the object
    pieces = read_ahead(stored(99), depth=2)
    next(pieces)
    pieces.close()
    assert closed == [None, 3, 99]
