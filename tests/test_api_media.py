"""The API's media: resumable uploads in chunks (each an S3 part, against the real SeaweedFS the
suite finds or starts), resumed after a chunk at the wrong offset, checked like the composer's
upload, refused ones leaving nothing in storage; and reading a video's facts through the same
gate as the pages (404 for another agency's, or an account the key may not use)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tracemalloc
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.api.models import ApiKey, MediaUpload, UploadState
from apps.api.uploads import uploads_abandon
from apps.media.storage import media_storage
from apps.posts.models import Post, PostMedia
from apps.users.models import Role
from tenants.models import Agency
from tenants.tasks import tenants_purge_expired
from tests.factories import PostFactory, PostMediaFactory, TikTokAccountFactory
from tests.mp4 import PNG_BYTES, mp4_bytes
from tests.test_api import api, error_code, make_key, post_json
from tests.test_media_storage import Tripwire

pytestmark = pytest.mark.django_db

PART = 5 * 1024 * 1024  # S3's smallest part: what the tests set chunk_size to


@pytest.fixture(autouse=True)
def _small_parts(settings: Any, alpha: Agency, beta: Agency) -> None:
    settings.API_UPLOAD_PART_BYTES = PART
    settings.API_UPLOAD_CHUNK_PARTS = 2
    # Objects outlive the rolled-back rows of earlier tests: start each test with none.
    for agency in (alpha, beta):
        with schema_context(agency.schema_name):
            media_storage().delete_agency(agency.schema_name)
            for key, upload_id in pending_parts(agency):
                client().abort_multipart_upload(Bucket=bucket(), Key=key, UploadId=upload_id)


def client() -> Any:
    return media_storage().client  # type: ignore[attr-defined]


def bucket() -> str:
    return str(media_storage().bucket_name)  # type: ignore[attr-defined]


def pending_parts(agency: Agency) -> list[tuple[str, str]]:
    """Multipart uploads under the agency's prefix that were neither completed nor aborted."""
    media_storage().bucket_ensure()  # type: ignore[attr-defined]
    found = client().list_multipart_uploads(Bucket=bucket(), Prefix=f"{agency.schema_name}/")
    return [(item["Key"], item["UploadId"]) for item in found.get("Uploads", ())]


def stored(agency: Agency) -> list[str]:
    with schema_context(agency.schema_name):
        return media_storage().agency_names(agency.schema_name)


def nothing_left(agency: Agency) -> None:
    assert stored(agency) == []
    assert pending_parts(agency) == []
    with schema_context(agency.schema_name):
        assert not PostMedia.all_objects.exists()


def video(size: int = 11_000_000) -> bytes:
    """An MP4 of about `size` bytes (9 s, 720x1280), its index at the end as cameras write it."""
    data = mp4_bytes(duration=9, width=720, height=1280, padding=max(0, size - 2_000))
    ftyp = int.from_bytes(data[:4], "big")
    moov = int.from_bytes(data[ftyp : ftyp + 4], "big")
    return data[:ftyp] + data[ftyp + moov :] + data[ftyp : ftyp + moov]


def start(key: Client, data: bytes, **body: Any) -> Any:
    fields = {"filename": "clip.mp4", "content_type": "video/mp4", "size": len(data), **body}
    return post_json(key, "/api/v1/media/uploads", fields)


def put(
    key: Client, upload_id: str, data: bytes, first: int, *, total: int, last: int | None = None, **extra: Any
) -> Any:
    last = first + len(data) - 1 if last is None else last
    headers = {"HTTP_CONTENT_RANGE": f"bytes {first}-{last}/{total}"}
    return key.put(
        f"/api/v1/media/uploads/{upload_id}",
        data,
        content_type="application/octet-stream",
        **{**headers, **extra},
    )


def send(key: Client, upload_id: str, whole: bytes, first: int, length: int) -> Any:
    chunk = whole[first : first + length]
    return put(key, upload_id, chunk, first, total=len(whole))


@pytest.fixture
def accounts(alpha: Agency) -> tuple[TikTokAccount, TikTokAccount]:
    with schema_context(alpha.schema_name):
        return TikTokAccountFactory(username="granted"), TikTokAccountFactory(username="other")


def test_a_video_sent_in_three_chunks_becomes_media_a_post_can_use(
    alpha: Agency, accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, _ = accounts
    key = api(alpha, make_key(alpha, accounts=[granted]))
    data = video()
    started = start(key, data, account_id=str(granted.pk))
    assert started.status_code == 201, started.content
    upload = started.json()
    assert (upload["offset"], upload["state"], upload["chunk_size"]) == (0, "receiving", PART)
    assert upload["max_chunk_size"] == 2 * PART and upload["media_id"] is None

    # Two whole parts, then the rest
    for first, length, offset in ((0, PART, PART), (PART, PART, 2 * PART)):
        sent = send(key, upload["id"], data, first, length)
        assert sent.status_code == 200, sent.content
        assert (sent.json()["offset"], sent.json()["state"]) == (offset, "receiving")
        assert key.get(f"/api/v1/media/uploads/{upload['id']}").json()["offset"] == offset
    last = send(key, upload["id"], data, 2 * PART, len(data) - 2 * PART)

    assert last.status_code == 200, last.content
    done = last.json()
    assert (done["state"], done["offset"], done["error"]) == ("complete", len(data), "")
    media = key.get(f"/api/v1/media/{done['media_id']}").json()
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert (media["size_bytes"], media["width"], media["height"], media["duration_seconds"]) == (
        len(data),
        720,
        1280,
        9.0,
    )
    assert (media["mime_type"], media["original_name"], media["post_id"]) == ("video/mp4", "clip.mp4", None)
    with schema_context(alpha.schema_name):
        row = PostMedia.objects.get()
        assert media_storage().read_range(row.file.name, 0, len(data) - 1) == data
    assert stored(alpha) == [row.file.name] and pending_parts(alpha) == []
    assert key.get(f"/api/v1/media/uploads/{upload['id']}").json()["media_id"] == done["media_id"]
    # A chunk sent after the end changes nothing
    again = send(key, upload["id"], data, 0, PART)
    assert (again.status_code, error_code(again)) == (409, "upload_complete")

    # And a post is made from it
    post = post_json(
        key,
        "/api/v1/posts",
        {"account_id": str(granted.pk), "caption": "from the API", "media_id": done["media_id"]},
    )
    assert post.status_code == 201, post.content
    with schema_context(alpha.schema_name):
        assert PostMedia.objects.get().post_id == Post.objects.get().pk
    assert key.get(f"/api/v1/media/{done['media_id']}").json()["post_id"] == post.json()["id"]


def test_a_chunk_at_the_wrong_offset_is_refused_with_where_to_go_on_from(alpha: Agency) -> None:
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    data = video()
    upload_id = start(key, data).json()["id"]
    assert send(key, upload_id, data, 0, PART).status_code == 200

    # The client lost the answer and skips ahead, or sends the first chunk again
    for first in (2 * PART, 0):
        refused = send(key, upload_id, data, first, PART)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "offset_mismatch"
        assert refused.json()["error"]["offset"] == PART and refused["Upload-Offset"] == str(PART)
    # Another request still sending a chunk holds the upload meanwhile
    with schema_context(alpha.schema_name):
        MediaUpload.objects.filter(pk=upload_id).update(
            receiving_until=timezone.now() + dt.timedelta(minutes=1)
        )
    busy = send(key, upload_id, data, PART, PART)
    assert (busy.status_code, error_code(busy)) == (409, "upload_busy")
    with schema_context(alpha.schema_name):
        MediaUpload.objects.filter(pk=upload_id).update(receiving_until=None)

    # It asks where the upload is and goes on from there, the rest in one (final) chunk
    offset = key.get(f"/api/v1/media/uploads/{upload_id}").json()["offset"]
    assert offset == PART
    done = send(key, upload_id, data, offset, len(data) - offset)
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "complete"
    with schema_context(alpha.schema_name):
        assert PostMedia.objects.get().sha256 == hashlib.sha256(data).hexdigest()
    assert pending_parts(alpha) == []


def test_a_small_video_is_one_chunk(alpha: Agency) -> None:
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    data = mp4_bytes(duration=3)
    upload_id = start(key, data).json()["id"]
    done = send(key, upload_id, data, 0, len(data))
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "complete"
    assert len(stored(alpha)) == 1


def test_another_agencys_or_another_keys_upload_and_media_are_not_found(alpha: Agency, beta: Agency) -> None:
    beta_key = api(beta, make_key(beta, role=Role.ADMIN))
    data = mp4_bytes(duration=3)
    theirs = start(beta_key, data).json()["id"]
    finished = start(beta_key, data).json()["id"]
    media_id = send(beta_key, finished, data, 0, len(data)).json()["media_id"]
    assert beta_key.get(f"/api/v1/media/{media_id}").status_code == 200

    for key in (api(alpha, make_key(alpha, role=Role.ADMIN)), api(beta, make_key(beta, role=Role.ADMIN))):
        for response in (
            key.get(f"/api/v1/media/uploads/{theirs}"),
            send(key, theirs, data, 0, len(data)),
            key.get(f"/api/v1/media/{media_id}"),
        ):
            assert (response.status_code, error_code(response)) == (404, "not_found")
    # Nothing of beta's upload moved
    with schema_context(beta.schema_name):
        assert MediaUpload.objects.get(pk=theirs).offset == 0


def test_a_key_without_the_account_gets_404(
    alpha: Agency, accounts: tuple[TikTokAccount, TikTokAccount]
) -> None:
    granted, other = accounts
    raw = make_key(alpha, accounts=[granted])
    key = api(alpha, raw)
    data = mp4_bytes(duration=3)
    # No upload for an account the key may not draft for; none at all for a key that drafts nowhere
    refused = start(key, data, account_id=str(other.pk))
    assert (refused.status_code, error_code(refused)) == (404, "not_found")
    viewer = api(alpha, make_key(alpha, role=Role.VIEWER, accounts=[granted]))
    assert start(viewer, data).status_code == 404
    with schema_context(alpha.schema_name):
        assert not MediaUpload.objects.exists()
        hidden = PostMediaFactory(post=PostFactory(account=other))
        shown = PostMediaFactory(post=PostFactory(account=granted))
    assert key.get(f"/api/v1/media/{hidden.pk}").status_code == 404
    assert key.get(f"/api/v1/media/{shown.pk}").json()["id"] == str(shown.pk)

    # An upload for an account whose drafting is taken away from the key is no longer its own
    upload_id = start(key, data, account_id=str(granted.pk)).json()["id"]
    with schema_context(alpha.schema_name):
        access_set(
            user=ApiKey.objects.get(prefix=raw[3:13]).member, account=granted, perms={Perm.VIEW}, by=None
        )
    assert key.get(f"/api/v1/media/uploads/{upload_id}").status_code == 404
    assert send(key, upload_id, data, 0, len(data)).status_code == 404


def test_bad_uploads_are_refused_clearly_and_leave_nothing(alpha: Agency) -> None:
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    data = video()
    for body, code in (
        ({"content_type": "image/png"}, "unsupported_media_type"),
        ({"size": 0}, "invalid_size"),
        ({"size": 4_000_000_001}, "too_large"),
    ):
        refused = start(key, data, **body)
        assert (refused.status_code, error_code(refused)) == (422, code), refused.content
    assert start(key, data, size="big").status_code == 422
    with schema_context(alpha.schema_name):
        assert not MediaUpload.objects.exists()

    upload_id = start(key, data).json()["id"]
    path = f"/api/v1/media/uploads/{upload_id}"
    chunk = data[:PART]
    for response, status, code in (
        (key.put(path, chunk, content_type="application/octet-stream"), 400, "invalid_content_range"),
        (
            put(key, upload_id, chunk, 0, total=len(data), HTTP_CONTENT_RANGE="bytes=0-10/20"),
            400,
            "invalid_content_range",
        ),
        (put(key, upload_id, chunk, 0, total=len(data) + 1), 400, "size_mismatch"),
        (put(key, upload_id, chunk, 0, last=PART + 9, total=len(data)), 400, "invalid_content_length"),
        (put(key, upload_id, data[:1000], 0, total=len(data)), 400, "invalid_chunk_size"),
        (put(key, upload_id, chunk, len(data) - 10, total=len(data)), 400, "invalid_content_range"),
    ):
        assert response.status_code == status, response.content
        assert error_code(response) == code
        assert response.json()["error"]["message"]
    assert key.get(path).json()["offset"] == 0
    nothing_left(alpha)


@pytest.mark.parametrize(
    ("data", "status", "code", "message"),
    [
        (PNG_BYTES + b"\0" * 6_000_000, 422, "not_a_video", "This file is not an MP4, MOV or WebM video."),
        (mp4_bytes(duration=0.5, padding=6_000_000), 422, "invalid_media", "The video lasts 0.5 s"),
    ],
    ids=["png", "too-short"],
)
def test_a_file_that_fails_the_check_is_deleted_with_the_reason(
    alpha: Agency, data: bytes, status: int, code: str, message: str
) -> None:
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    upload_id = start(key, data).json()["id"]
    first = send(key, upload_id, data, 0, PART)
    if code == "invalid_media":
        assert first.status_code == 200
        first = send(key, upload_id, data, PART, len(data) - PART)
    assert first.status_code == status, first.content
    assert error_code(first) == code and first.json()["error"]["message"].startswith(message)
    state = key.get(f"/api/v1/media/uploads/{upload_id}").json()
    assert state["state"] == "failed" and state["error"].startswith(message)
    nothing_left(alpha)


def test_uploads_not_finished_within_a_day_are_dropped_with_their_parts(alpha: Agency) -> None:
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    data = video()
    stale = start(key, data).json()["id"]
    assert send(key, stale, data, 0, PART).status_code == 200
    assert len(pending_parts(alpha)) == 1
    with schema_context(alpha.schema_name):
        assert uploads_abandon() == 0  # not a day old yet
        assert uploads_abandon(now=timezone.now() + dt.timedelta(hours=25)) == 1
        assert not MediaUpload.objects.exists()
    assert pending_parts(alpha) == []
    assert key.get(f"/api/v1/media/uploads/{stale}").status_code == 404

    # The daily retention run does it for each agency
    late = start(key, data).json()["id"]
    assert send(key, late, data, 0, PART).status_code == 200
    with schema_context(alpha.schema_name):
        MediaUpload.objects.filter(pk=late).update(created_at=timezone.now() - dt.timedelta(hours=25))
        tenants_purge_expired.fn()
    assert pending_parts(alpha) == []
    with schema_context(alpha.schema_name):
        assert not MediaUpload.objects.exists()


def test_the_schema_describes_the_upload_flow(alpha: Agency) -> None:
    schema = json.loads(Client(HTTP_HOST=alpha.primary_host).get("/api/v1/openapi.json").content)
    chunk = schema["paths"]["/api/v1/media/uploads/{upload_id}"]["put"]
    assert "Content-Range" in chunk["description"] and "chunk_size" in chunk["description"]
    assert "application/octet-stream" in chunk["requestBody"]["content"]
    assert "/api/v1/media/{media_id}" in schema["paths"]
    assert (
        UploadState.COMPLETE
        in schema["components"]["schemas"]["UploadOut"]["properties"]["state"]["description"]
    )


def test_a_chunk_is_stored_a_part_at_a_time_and_a_larger_one_refused_unread(
    alpha: Agency, settings: Any
) -> None:
    settings.API_UPLOAD_CHUNK_PARTS = 8
    key = api(alpha, make_key(alpha, role=Role.ADMIN))
    data = video(size=8 * PART + 100_000)
    upload_id = start(key, data).json()["id"]
    body = Tripwire(data[: 8 * PART])  # read piece by piece, as from a socket

    tracemalloc.start()
    try:
        sent = key.generic(
            "PUT",
            f"/api/v1/media/uploads/{upload_id}",
            **{
                "wsgi.input": body,
                "CONTENT_LENGTH": str(8 * PART),
                "CONTENT_TYPE": "application/octet-stream",
                "HTTP_CONTENT_RANGE": f"bytes 0-{8 * PART - 1}/{len(data)}",
            },
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sent.status_code == 200, sent.content
    assert sent.json()["offset"] == 8 * PART
    # 40 MiB received holding about one 5 MiB part (and its copy for the request to S3)
    assert peak < 4 * PART, peak
    # A body over the largest chunk is refused before anything reads it
    settings.API_UPLOAD_CHUNK_PARTS = 1
    tripwire = Tripwire()
    over = key.generic(
        "PUT",
        f"/api/v1/media/uploads/{upload_id}",
        **{
            "wsgi.input": tripwire,
            "CONTENT_LENGTH": str(PART + 1),
            "CONTENT_TYPE": "application/octet-stream",
            "HTTP_CONTENT_RANGE": f"bytes {8 * PART}-{9 * PART}/{len(data)}",
        },
    )
    assert over.status_code == 413 and tripwire.read_bytes == 0
    assert over["Content-Type"] == "application/json"
    assert over.json()["error"]["code"] == "body_too_large"
    assert over.json()["error"]["limit_bytes"] == PART
    assert key.get(f"/api/v1/media/uploads/{upload_id}").json()["offset"] == 8 * PART
