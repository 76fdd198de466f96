"""The fake TikTok, over a real socket: its OAuth page and tokens, the posting and display
endpoints, uploads, the status timeline, faults, webhooks and the control API.

No database: these tests talk HTTP to the fake only. Timelines run on a manual clock, so
nothing here waits for processing to finish.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from apps.fake_tiktok import rules
from apps.fake_tiktok.creators import (
    BANNED_OPEN_ID,
    CREATORS,
    NEAR_CAP_OPEN_ID,
    NO_COMMENT_OPEN_ID,
    PRIVATE_OPEN_ID,
    PUBLIC_OPEN_ID,
)
from apps.fake_tiktok.server import FakeTikTok
from tests.factories import video_of_size
from tests.mp4 import mp4_bytes, webm_bytes

KEY = "postline-test"
SECRET = "test-secret"
REDIRECT_URI = "http://localhost:8000/oauth/tiktok/callback/"
ALL_SCOPES = "user.info.basic,user.info.profile,user.info.stats,video.list,video.upload,video.publish"
INIT = "/v2/post/publish/video/init/"
INBOX_INIT = "/v2/post/publish/inbox/video/init/"
CREATOR_INFO = "/v2/post/publish/creator_info/query/"
STATUS = "/v2/post/publish/status/fetch/"
TOKEN = "/v2/oauth/token/"
MB = 1_000_000
# A 1,000-byte video TikTok's processing takes (12 s, 1080x1920, H.264, 30 fps).
VIDEO = video_of_size(1000)


# --- Fixtures and helpers ---


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WebhookReceiver:
    """A tiny HTTP endpoint that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers.get("TikTok-Signature", ""), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/tiktok/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def events(self) -> list[dict[str, Any]]:
        """Every delivery, its signature checked, with `content` decoded."""
        return [verified(signature, body) for signature, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verified(signature: str, body: bytes) -> dict[str, Any]:
    parts = dict(item.split("=", 1) for item in signature.split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["s"], expected), "signature does not verify"
    assert abs(int(parts["t"]) - time.time()) < 60
    payload = json.loads(body)
    assert isinstance(payload["content"], str)  # TikTok sends content as a JSON string
    return {**payload, "content": json.loads(payload["content"])}


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeTikTok]:
    with FakeTikTok(
        client_key=KEY, client_secret=SECRET, processing_seconds=0.2, publicly_available_seconds=0.3, seed=7
    ) as fake:
        yield fake


@pytest.fixture
def fake(shared_fake: FakeTikTok) -> Iterator[FakeTikTok]:
    shared_fake.reset()
    shared_fake.webhook_url = None
    yield shared_fake
    shared_fake.clear_faults()


@pytest.fixture
def api(fake: FakeTikTok) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked(clock: ManualClock) -> Iterator[FakeTikTok]:
    """A fake whose time moves only when the test says so."""
    with FakeTikTok(
        client_key=KEY,
        client_secret=SECRET,
        processing_seconds=30,
        publicly_available_seconds=60,
        clock=clock,
    ) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def bearer(
    fake: FakeTikTok, open_id: str = PUBLIC_OPEN_ID, scopes: list[str] | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.issue_tokens(open_id, scopes)['access_token']}"}


def file_upload(size: int, chunk: int | None = None, count: int = 1) -> dict[str, object]:
    return {
        "source": "FILE_UPLOAD",
        "video_size": size,
        "chunk_size": chunk or size,
        "total_chunk_count": count,
    }


def direct_init(
    api: httpx.Client,
    headers: dict[str, str],
    *,
    source: dict[str, object] | None = None,
    privacy: str = "PUBLIC_TO_EVERYONE",
    **post: object,
) -> httpx.Response:
    post_info = {"privacy_level": privacy, "title": "Shaping a loaf", **post}
    return api.post(
        INIT, headers=headers, json={"post_info": post_info, "source_info": source or file_upload(1000)}
    )


def put_chunk(url: str, data: bytes, first: int, total: int, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{first + len(data) - 1}/{total}"}
    return httpx.put(url, content=data, headers={**sent, **headers}, timeout=10)


def fetch_status(api: httpx.Client, headers: dict[str, str], publish_id: str) -> dict[str, Any]:
    response = api.post(STATUS, headers=headers, json={"publish_id": publish_id})
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def code_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


VERIFIER = "fake-test-verifier-" + "v" * 40


def authorize_url(fake: FakeTikTok, **overrides: str) -> str:
    query = {
        "client_key": KEY,
        "scope": ALL_SCOPES,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "response_type": "code",
        "disable_auto_auth": "1",
        "code_challenge": hashlib.sha256(VERIFIER.encode()).hexdigest(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return f"{fake.authorize_url}?{urlencode(query)}"


def consent(url: str, *, creator: str, scopes: list[str], decision: str = "authorize") -> httpx.Response:
    return httpx.post(url, data={"creator": creator, "scope": scopes, "decision": decision}, timeout=5)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def exchange(api: httpx.Client, code: str, **overrides: str) -> httpx.Response:
    form = {
        "client_key": KEY,
        "client_secret": SECRET,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        **overrides,
    }
    return api.post(TOKEN, data=form)


def refresh(api: httpx.Client, refresh_token: str) -> httpx.Response:
    form = {
        "client_key": KEY,
        "client_secret": SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    return api.post(TOKEN, data=form)


# --- OAuth: the consent page ---


def test_authorize_page_lists_every_creator_and_checks_every_requested_scope(fake: FakeTikTok) -> None:
    page = httpx.get(authorize_url(fake), timeout=5)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    radios = re.findall(r'<input type="radio" name="creator" value="([^"]+)"', page.text)
    assert radios == [creator.open_id for creator in CREATORS]
    for creator in CREATORS:
        assert f"@{creator.username}" in page.text and creator.note in page.text
    checked = re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked>', page.text)
    assert checked == ALL_SCOPES.split(",")
    assert '<input type="hidden" name="state" value="state-123">' in page.text
    assert 'value="authorize"' in page.text and 'value="cancel"' in page.text


def test_authorize_redirects_with_a_single_use_code_the_scopes_and_the_state(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    # Given a person who picks the private creator and keeps every scope
    answer = consent(authorize_url(fake), creator=PRIVATE_OPEN_ID, scopes=ALL_SCOPES.split(","))
    query = redirect_query(answer)
    assert query["scopes"] == ALL_SCOPES and query["state"] == "state-123"

    # When the app exchanges the code
    first = exchange(api, query["code"])

    # Then it holds a flat token body for that creator, and the code cannot be used again
    body = first.json()
    assert first.status_code == 200
    assert (
        body["open_id"] == PRIVATE_OPEN_ID and body["scope"] == ALL_SCOPES and body["token_type"] == "Bearer"
    )
    assert body["expires_in"] == 7200 and body["refresh_expires_in"] == 180 * 86400
    assert body["access_token"] and body["refresh_token"] and "data" not in body
    again = exchange(api, query["code"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant" and again.json()["log_id"]


def test_an_unchecked_scope_is_not_granted(fake: FakeTikTok, api: httpx.Client) -> None:
    kept = [scope for scope in ALL_SCOPES.split(",") if scope != "video.publish"]
    query = redirect_query(consent(authorize_url(fake), creator=PUBLIC_OPEN_ID, scopes=kept))
    assert query["scopes"] == ",".join(kept)

    tokens = exchange(api, query["code"]).json()
    assert "video.publish" not in tokens["scope"].split(",")
    refused = api.post(CREATOR_INFO, headers={"Authorization": f"Bearer {tokens['access_token']}"}, json={})
    assert refused.status_code == 401 and code_of(refused) == "scope_not_authorized"


def test_cancel_redirects_with_access_denied(fake: FakeTikTok) -> None:
    query = redirect_query(consent(authorize_url(fake), creator="", scopes=[], decision="cancel"))
    assert query["error"] == "access_denied" and query["error_description"]
    assert query["state"] == "state-123" and "code" not in query


def test_authorize_refuses_an_unknown_app_and_asks_for_a_creator(fake: FakeTikTok) -> None:
    unknown = httpx.get(authorize_url(fake, client_key="someone-else"), timeout=5)
    assert unknown.status_code == 400 and "Unknown client_key" in unknown.text
    with_query = httpx.get(authorize_url(fake, redirect_uri=REDIRECT_URI + "?next=1"), timeout=5)
    assert with_query.status_code == 400

    no_creator = consent(authorize_url(fake), creator="", scopes=["user.info.basic"])
    assert no_creator.status_code == 400 and "Choose an account" in no_creator.text


# --- OAuth: tokens ---


def test_authorize_requires_a_pkce_challenge_in_tiktoks_form(fake: FakeTikTok) -> None:
    for overrides in (
        {"code_challenge": ""},
        {"code_challenge_method": "plain"},
        # base64url, not TikTok's hex
        {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
    ):
        page = httpx.get(authorize_url(fake, **overrides), timeout=5)
        assert page.status_code == 400 and "code_challenge (errCode 10007)" in page.text
    assert not [c for c in fake.calls if c["endpoint"] == "token"]


def test_token_exchange_checks_the_pkce_verifier(fake: FakeTikTok, api: httpx.Client) -> None:
    code = redirect_query(consent(authorize_url(fake), creator=PUBLIC_OPEN_ID, scopes=["user.info.basic"]))[
        "code"
    ]
    missing = exchange(api, code, code_verifier="")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = exchange(api, code, code_verifier="b" * 64)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "code_verifier" in wrong.json()["error_description"]
    assert exchange(api, code).status_code == 200


def test_token_endpoint_refuses_a_wrong_secret_or_redirect_uri(fake: FakeTikTok, api: httpx.Client) -> None:
    code = redirect_query(consent(authorize_url(fake), creator=PUBLIC_OPEN_ID, scopes=["user.info.basic"]))[
        "code"
    ]

    wrong_secret = exchange(api, code, client_secret="not-it")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    wrong_redirect = exchange(api, code, redirect_uri="http://localhost:8000/elsewhere/")
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_grant"
    as_json = api.post(
        TOKEN, json={"client_key": KEY, "client_secret": SECRET, "grant_type": "refresh_token"}
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


def test_refresh_tokens_rotate(fake: FakeTikTok, api: httpx.Client) -> None:
    first = fake.issue_tokens(PUBLIC_OPEN_ID)

    rotated = refresh(api, str(first["refresh_token"]))

    second = rotated.json()
    assert rotated.status_code == 200 and second["open_id"] == PUBLIC_OPEN_ID
    assert (
        second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    )
    reused = refresh(api, str(first["refresh_token"]))
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert refresh(api, str(second["refresh_token"])).status_code == 200
    assert refresh(api, "rft.never-issued").json()["error"] == "invalid_grant"


def test_revoke_ends_the_whole_grant(fake: FakeTikTok, api: httpx.Client) -> None:
    tokens = fake.issue_tokens(PUBLIC_OPEN_ID)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert api.post(CREATOR_INFO, headers=headers, json={}).status_code == 200

    wrong = api.post("/v2/oauth/revoke/", data={"client_key": KEY, "client_secret": "x", "token": "t"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    revoked = api.post(
        "/v2/oauth/revoke/",
        data={"client_key": KEY, "client_secret": SECRET, "token": tokens["refresh_token"]},
    )

    assert revoked.status_code == 200
    after = api.post(CREATOR_INFO, headers=headers, json={})
    assert after.status_code == 401 and code_of(after) == "access_token_invalid"
    assert refresh(api, str(tokens["refresh_token"])).json()["error"] == "invalid_grant"


def test_access_tokens_expire_after_their_lifetime(clocked: FakeTikTok, clock: ManualClock) -> None:
    headers = bearer(clocked)
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        assert api.post(CREATOR_INFO, headers=headers, json={}).status_code == 200
        clock.advance(7200)
        expired = api.post(CREATOR_INFO, headers=headers, json={})
    assert expired.status_code == 401 and code_of(expired) == "access_token_invalid"


# --- Envelope errors ---


def test_missing_expired_or_underscoped_tokens_get_401_in_the_envelope(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    missing = api.post(CREATOR_INFO, json={})
    assert missing.status_code == 401 and code_of(missing) == "access_token_invalid"
    assert (
        missing.json()["error"]["log_id"]
        and missing.headers["x-tt-logid"] == missing.json()["error"]["log_id"]
    )

    token = str(fake.issue_tokens(PUBLIC_OPEN_ID)["access_token"])
    fake.expire_access_token(token)
    expired = api.get(
        "/v2/user/info/", params={"fields": "open_id"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert expired.status_code == 401 and code_of(expired) == "access_token_invalid"

    basic = bearer(fake, scopes=["user.info.basic"])
    assert code_of(direct_init(api, basic)) == "scope_not_authorized"
    counts = api.get("/v2/user/info/", params={"fields": "open_id,follower_count"}, headers=basic)
    assert counts.status_code == 401 and code_of(counts) == "scope_not_authorized"
    names = api.get("/v2/user/info/", params={"fields": "open_id,display_name"}, headers=basic)
    assert names.json()["data"]["user"] == {"open_id": PUBLIC_OPEN_ID, "display_name": "Luna Bakes"}
    unknown = api.get("/v2/user/info/", params={"fields": "open_id,shoe_size"}, headers=basic)
    assert unknown.status_code == 400 and code_of(unknown) == "invalid_params"


def test_user_info_with_stats_scope_returns_the_counts(fake: FakeTikTok, api: httpx.Client) -> None:
    fields = "open_id,username,follower_count,following_count,likes_count,video_count,avatar_url"
    response = api.get("/v2/user/info/", params={"fields": fields}, headers=bearer(fake))
    user = response.json()["data"]["user"]
    assert code_of(response) == "ok"
    assert user["username"] == "luna.bakes" and user["follower_count"] == 128_400 and user["video_count"] == 3
    avatar = httpx.get(user["avatar_url"], timeout=5)
    assert avatar.status_code == 200 and avatar.headers["content-type"] == "image/svg+xml"


# --- creator_info ---


@pytest.mark.parametrize(
    ("open_id", "options", "disabled"),
    [
        (PUBLIC_OPEN_ID, ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"], False),
        (PRIVATE_OPEN_ID, ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"], False),
        (NO_COMMENT_OPEN_ID, ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"], True),
    ],
)
def test_creator_info_gives_each_creators_options(
    fake: FakeTikTok, api: httpx.Client, open_id: str, options: list[str], disabled: bool
) -> None:
    response = api.post(CREATOR_INFO, headers=bearer(fake, open_id), json={})
    data = response.json()["data"]
    assert response.status_code == 200 and code_of(response) == "ok"
    assert data["privacy_level_options"] == options
    assert (data["comment_disabled"], data["duet_disabled"], data["stitch_disabled"]) == (disabled,) * 3
    assert data["creator_nickname"] and data["creator_username"] and data["max_video_post_duration_sec"] > 0


def test_a_banned_creator_is_refused_with_http_200_then_403(fake: FakeTikTok, api: httpx.Client) -> None:
    headers = bearer(fake, BANNED_OPEN_ID)
    info = api.post(CREATOR_INFO, headers=headers, json={})
    assert info.status_code == 200 and code_of(info) == "spam_risk_user_banned_from_posting"
    init = direct_init(api, headers)
    assert init.status_code == 403 and code_of(init) == "spam_risk_user_banned_from_posting"


# --- init validation ---


def test_init_checks_privacy_title_and_branded_content(fake: FakeTikTok, api: httpx.Client) -> None:
    headers = bearer(fake)
    mismatch = direct_init(api, headers, privacy="FOLLOWER_OF_CREATOR")
    assert mismatch.status_code == 403 and code_of(mismatch) == "privacy_level_option_mismatch"
    # 1,100 emoji are 2,200 UTF-16 code units: the limit exactly; one more is too long.
    assert direct_init(api, headers, title="😀" * 1100).status_code == 200
    too_long = direct_init(api, headers, title="😀" * 1100 + "a")
    assert too_long.status_code == 400 and code_of(too_long) == "invalid_param"
    branded = direct_init(api, headers, privacy="SELF_ONLY", brand_content_toggle=True)
    assert branded.status_code == 400 and "Branded content" in branded.json()["error"]["message"]
    no_privacy = api.post(INIT, headers=headers, json={"post_info": {}, "source_info": file_upload(1000)})
    assert no_privacy.status_code == 400 and code_of(no_privacy) == "invalid_param"
    pull = direct_init(
        api, headers, source={"source": "PULL_FROM_URL", "video_url": "https://cdn.example/v.mp4"}
    )
    assert pull.status_code == 403 and code_of(pull) == "url_ownership_unverified"


@pytest.mark.parametrize(
    ("size", "chunk", "count", "accepted"),
    [
        (50_000_123, 10_000_000, 5, True),  # TikTok's own example
        (50_000_123, 10_000_000, 6, False),  # count must be floor(size / chunk)
        (4_999_999, 4_999_999, 1, True),  # under 5 MB: one chunk of its own size
        (4_999_999, 1_000_000, 4, False),
        (20 * MB, 4 * MB, 5, False),  # chunks below 5 MB
        (200 * MB, 65 * MB, 3, False),  # chunks above 64 MB
        (100 * MB, 100 * MB, 1, False),  # a big video cannot be one chunk
        (4_000 * MB, 64 * MB, 62, True),  # 4 GB: the last chunk absorbs 96 MB
        (4_000 * MB + 1, 64 * MB, 62, False),  # over 4 GB
    ],
)
def test_init_checks_the_chunk_plan(
    fake: FakeTikTok, api: httpx.Client, size: int, chunk: int, count: int, accepted: bool
) -> None:
    response = direct_init(api, bearer(fake), source=file_upload(size, chunk, count))
    assert (response.status_code == 200) is accepted, response.text
    if accepted:
        data = response.json()["data"]
        assert data["publish_id"].startswith("v_pub_file~v2-1.") and len(data["publish_id"]) <= 64
        assert data["upload_url"].startswith(f"{fake.base_url}/upload/?upload_id=")
    else:
        assert code_of(response) == "invalid_param"


def test_chunk_ranges_of_tiktoks_example() -> None:
    plan = rules.chunk_plan(50_000_123, 10_000_000, 5)
    assert [plan.byte_range(index) for index in range(plan.count)] == [
        (0, 9_999_999),
        (10_000_000, 19_999_999),
        (20_000_000, 29_999_999),
        (30_000_000, 39_999_999),
        (40_000_000, 50_000_122),
    ]
    assert plan.last_size == 10_000_123


# --- Uploads ---


def test_upload_answers_206_201_416_400_and_404(fake: FakeTikTok, api: httpx.Client) -> None:
    # Given a 10,000,001-byte video declared as two chunks: 5,000,000 then 5,000,001 bytes
    headers = bearer(fake)
    size = 10_000_001
    video = video_of_size(size)
    init = direct_init(api, headers, source=file_upload(size, 5 * MB, 2)).json()["data"]
    url, publish_id = init["upload_url"], init["publish_id"]
    first, second = video[: 5 * MB], video[5 * MB :]
    assert fetch_status(api, headers, publish_id)["status"] == "PROCESSING_UPLOAD"

    # Out of order, bad headers, a wrong total: refused, nothing counted
    assert put_chunk(url, second, 5 * MB, size).status_code == 416
    assert put_chunk(url, first, 0, size + 1).status_code == 400
    assert put_chunk(url, first, 0, size, **{"Content-Range": "0-4999999"}).status_code == 400
    assert put_chunk(url, first, 0, size, **{"Content-Type": "image/png"}).status_code == 400
    assert put_chunk(url, first[:100], 0, size).status_code == 416  # not the planned chunk
    assert fetch_status(api, headers, publish_id)["uploaded_bytes"] == 0

    # The chunks in order: 206 then 201; a repeated chunk is 416
    assert put_chunk(url, first, 0, size).status_code == 206
    assert put_chunk(url, first, 0, size).status_code == 416
    assert (
        put_chunk(url, second, 5 * MB, size, **{"Content-Type": "video/mp4; codecs=avc1"}).status_code == 201
    )

    status = fetch_status(api, headers, publish_id)
    # (processing is short here: on a busy machine it may be over already)
    assert status["status"] in ("PROCESSING_DOWNLOAD", "PUBLISH_COMPLETE")
    assert status["uploaded_bytes"] == size
    assert fake.publish(publish_id)["sha256"] == hashlib.sha256(video).hexdigest()
    unknown = put_chunk(url.replace("upload_id=", "upload_id=nope"), b"x" * 10, 0, 10)
    assert unknown.status_code == 404


def test_an_upload_url_expires_after_an_hour(clocked: FakeTikTok, clock: ManualClock) -> None:
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        url = direct_init(api, bearer(clocked)).json()["data"]["upload_url"]
    clock.advance(3600)
    assert put_chunk(url, b"x" * 1000, 0, 1000).status_code == 403


# --- What processing checks in the video ---


def _moov_last(data: bytes) -> bytes:
    ftyp_size = int.from_bytes(data[:4], "big")
    moov_size = int.from_bytes(data[ftyp_size : ftyp_size + 4], "big")
    return data[:ftyp_size] + data[ftyp_size + moov_size :] + data[ftyp_size : ftyp_size + moov_size]


@pytest.mark.parametrize(
    ("video", "fail_reason"),
    [
        (mp4_bytes(fps=120), "frame_rate_check_failed"),
        (mp4_bytes(fps=15), "frame_rate_check_failed"),
        (webm_bytes(fps=90), "frame_rate_check_failed"),
        (mp4_bytes(width=320, height=240), "picture_size_check_failed"),
        (mp4_bytes(width=1080, height=5000), "picture_size_check_failed"),
        (mp4_bytes(codec=b"apcn", brand=b"qt  "), "file_format_check_failed"),
        (mp4_bytes(codec=b"mp4v"), "file_format_check_failed"),
        (webm_bytes(codec=b"V_AV1"), "file_format_check_failed"),
        (b"\0" * 2000, "file_format_check_failed"),
        (mp4_bytes(duration=601), "duration_check_failed"),
        # A 10 MB upload in two chunks whose index (moov) comes last, as cameras write it.
        (_moov_last(mp4_bytes(fps=120, padding=10_000_000)), "frame_rate_check_failed"),
        (mp4_bytes(fps=23.976, codec=b"hvc1"), None),
        (webm_bytes(fps=60, codec=b"V_VP8"), None),
        (_moov_last(mp4_bytes(padding=10_000_000)), None),
    ],
    ids=[
        "120fps",
        "15fps",
        "webm-90fps",
        "320x240",
        "5000-high",
        "prores-mov",
        "mpeg4-part2",
        "webm-av1",
        "not-a-video",
        "over-10-min",
        "moov-last-120fps",
        "hevc-23.976",
        "webm-vp8-60",
        "moov-last-ok",
    ],
)
def test_processing_refuses_what_tiktok_refuses_about_the_video(
    clocked: FakeTikTok, clock: ManualClock, video: bytes, fail_reason: str | None
) -> None:
    headers = bearer(clocked)
    size = len(video)
    count = 1 if size < 10 * MB else 2
    chunk = size if count == 1 else 5 * MB
    with httpx.Client(base_url=clocked.base_url, timeout=10) as api:
        init = direct_init(api, headers, source=file_upload(size, chunk, count)).json()["data"]
        for index in range(count):
            first = index * chunk
            last = size if index == count - 1 else first + chunk
            assert put_chunk(init["upload_url"], video[first:last], first, size).status_code in (201, 206)
        clock.advance(30)
        status = fetch_status(api, headers, init["publish_id"])

    if fail_reason is None:
        assert status["status"] == "PUBLISH_COMPLETE", status
    else:
        assert (status["status"], status.get("fail_reason")) == ("FAILED", fail_reason)


# --- Status timeline and webhooks ---


def test_status_moves_to_complete_then_public_with_signed_webhooks(
    clocked: FakeTikTok, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    # Given a Direct Post whose one chunk has arrived
    clocked.webhook_url = receiver.url
    headers = bearer(clocked)
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        init = direct_init(api, headers, title="Crumb shot, again").json()["data"]
        assert put_chunk(init["upload_url"], VIDEO, 0, 1000).status_code == 201
        processing = fetch_status(api, headers, init["publish_id"])

        # When processing_seconds, then publicly_available_seconds, go by
        clock.advance(30)
        complete = fetch_status(api, headers, init["publish_id"])
        clock.advance(60)
        public = fetch_status(api, headers, init["publish_id"])
        videos = api.post(
            "/v2/video/list/", params={"fields": "id,title"}, headers=headers, json={"max_count": 1}
        ).json()["data"]["videos"]

    # Then the status moves on, the post gets its 19-digit id, and the list starts with it
    assert processing == {
        "status": "PROCESSING_DOWNLOAD",
        "publicaly_available_post_id": [],
        "uploaded_bytes": 1000,
    }
    assert complete["status"] == "PUBLISH_COMPLETE" and complete["publicaly_available_post_id"] == []
    post_ids = public["publicaly_available_post_id"]
    assert (
        public["status"] == "PUBLISH_COMPLETE" and len(post_ids) == 1 and re.fullmatch(r"\d{19}", post_ids[0])
    )
    assert videos == [{"id": post_ids[0], "title": "Crumb shot, again"}]
    # ... and TikTok told the app so, twice, with signed webhooks
    events = wait_for(lambda: len(receiver.received) >= 2 and receiver.events())
    assert [event["event"] for event in events] == [
        "post.publish.complete",
        "post.publish.publicly_available",
    ]
    assert all(event["client_key"] == KEY and event["user_openid"] == PUBLIC_OPEN_ID for event in events)
    assert events[0]["content"]["publish_id"] == init["publish_id"]
    assert events[1]["content"]["post_id"] == post_ids[0]


def test_inbox_uploads_end_in_the_inbox_and_are_capped_at_five_pending(
    clocked: FakeTikTok, clock: ManualClock
) -> None:
    headers = bearer(clocked, scopes=["video.upload"])
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        first = api.post(INBOX_INIT, headers=headers, json={"source_info": file_upload(1000)}).json()["data"]
        assert first["publish_id"].startswith("v_inbox_file~v2.")
        assert put_chunk(first["upload_url"], VIDEO, 0, 1000).status_code == 201
        clock.advance(30)
        assert fetch_status(api, headers, first["publish_id"])["status"] == "SEND_TO_USER_INBOX"
        for _ in range(4):
            assert (
                api.post(INBOX_INIT, headers=headers, json={"source_info": file_upload(1000)}).status_code
                == 200
            )
        sixth = api.post(INBOX_INIT, headers=headers, json={"source_info": file_upload(1000)})
        direct = direct_init(api, headers)
    assert sixth.status_code == 403 and code_of(sixth) == "spam_risk_too_many_pending_share"
    assert code_of(direct) == "scope_not_authorized"  # video.upload does not allow a Direct Post
    assert len(clocked.create_post_calls(PUBLIC_OPEN_ID)) == 7


def test_the_daily_cap_refuses_the_sixteenth_post_until_a_day_has_passed(
    clocked: FakeTikTok, clock: ManualClock
) -> None:
    # Given the creator who has already posted 14 times today
    headers = bearer(clocked, NEAR_CAP_OPEN_ID)
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        assert code_of(api.post(CREATOR_INFO, headers=headers, json={})) == "ok"

        # When the 15th post is made, then a 16th is tried
        fifteenth = direct_init(api, headers)
        sixteenth = direct_init(api, headers)
        info = api.post(CREATOR_INFO, headers=headers, json={})

        # Then the 16th is refused, creator_info says so with HTTP 200, until the window moves on
        assert fifteenth.status_code == 200
        assert sixteenth.status_code == 403 and code_of(sixteenth) == "spam_risk_too_many_posts"
        assert info.status_code == 200 and code_of(info) == "spam_risk_too_many_posts"
        clock.advance(86_400)
        assert direct_init(api, bearer(clocked, NEAR_CAP_OPEN_ID)).status_code == 200
    statuses = [call["status"] for call in clocked.create_post_calls(NEAR_CAP_OPEN_ID)]
    assert statuses == [200, 403, 200]


# --- Display API ---


def test_video_list_pages_by_cursor_and_query_sees_only_the_creators_videos(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    headers = bearer(fake)
    fields = {"fields": "id,create_time,like_count,view_count,share_url"}
    page1 = api.post("/v2/video/list/", params=fields, headers=headers, json={"max_count": 2}).json()["data"]
    page2 = api.post(
        "/v2/video/list/", params=fields, headers=headers, json={"max_count": 2, "cursor": page1["cursor"]}
    ).json()["data"]

    ids = [video["id"] for video in page1["videos"] + page2["videos"]]
    assert ids == [video.id for video in CREATORS[0].videos]
    assert page1["has_more"] is True and page2["has_more"] is False
    assert page1["videos"][0]["view_count"] == 240_100 and set(page1["videos"][0]) == set(
        fields["fields"].split(",")
    )
    too_many = api.post("/v2/video/list/", params=fields, headers=headers, json={"max_count": 21})
    assert too_many.status_code == 400 and code_of(too_many) == "invalid_params"

    others = CREATORS[1].videos[0].id
    queried = api.post(
        "/v2/video/query/", params=fields, headers=headers, json={"filters": {"video_ids": [ids[1], others]}}
    )
    assert [video["id"] for video in queried.json()["data"]["videos"]] == [ids[1]]
    twenty_one = api.post(
        "/v2/video/query/", params=fields, headers=headers, json={"filters": {"video_ids": ["1"] * 21}}
    )
    assert twenty_one.status_code == 400 and code_of(twenty_one) == "invalid_params"


# --- Faults ---


@pytest.mark.parametrize(
    ("endpoint", "kind", "extra", "status", "code"),
    [
        ("creator_info", "http_429", {}, 429, "rate_limit_exceeded"),
        ("creator_info", "http_5xx", {"status": 503}, 503, "internal_error"),
        ("creator_info", "spam_risk", {}, 200, "spam_risk_too_many_posts"),
        ("init", "spam_risk", {}, 403, "spam_risk_too_many_posts"),
        ("init", "http_5xx", {}, 500, "internal_error"),
        ("user_info", "expired_token", {}, 401, "access_token_invalid"),
        ("init", "error", {"status": 403, "code": "reached_active_user_cap"}, 403, "reached_active_user_cap"),
    ],
)
def test_an_answering_fault_replaces_the_next_answer_only(
    fake: FakeTikTok,
    api: httpx.Client,
    endpoint: str,
    kind: str,
    extra: dict[str, Any],
    status: int,
    code: str,
) -> None:
    headers = bearer(fake)
    fake.add_fault(endpoint, kind, count=1, **extra)

    def call() -> httpx.Response:
        if endpoint == "init":
            return direct_init(api, headers)
        if endpoint == "user_info":
            return api.get("/v2/user/info/", params={"fields": "open_id"}, headers=headers)
        return api.post(CREATOR_INFO, headers=headers, json={})

    faulted, normal = call(), call()

    assert (faulted.status_code, code_of(faulted)) == (status, code)
    assert faulted.json()["error"]["log_id"]
    assert (normal.status_code, code_of(normal)) == (200, "ok")
    assert [c["status"] for c in fake.calls if c["endpoint"] == endpoint] == [status, 200]


def test_oauth_faults_answer_flat_errors_without_using_the_refresh_token(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    refresh_token = str(fake.issue_tokens(PUBLIC_OPEN_ID)["refresh_token"])
    fake.add_fault("token", "invalid_grant", count=1)
    fake.add_fault("token", "http_5xx", count=1)

    refused, broken, works = (refresh(api, refresh_token) for _ in range(3))

    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert broken.status_code == 500 and broken.json()["error"] == "server_error" and broken.json()["log_id"]
    assert works.status_code == 200 and works.json()["access_token"]


def test_a_dropped_init_is_recorded_as_a_create_post_call_and_creates_nothing(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    headers = bearer(fake)
    fake.add_fault("init", "drop", count=1)

    with pytest.raises(httpx.TransportError):
        direct_init(api, headers)

    calls = fake.create_post_calls(PUBLIC_OPEN_ID)
    assert [(c["endpoint"], c["status"]) for c in calls] == [("init", 0)]
    assert calls[0]["access_token_sha"] == hashlib.sha256(headers["Authorization"][7:].encode()).hexdigest()
    assert api.get("/_fake/publishes").json() == []
    assert direct_init(api, headers).status_code == 200


def test_a_timed_out_init_is_recorded_at_once(fake: FakeTikTok) -> None:
    headers = bearer(fake)
    fake.add_fault("init", "timeout", count=1, delay=0.5)

    with httpx.Client(base_url=fake.base_url, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        direct_init(impatient, headers)

    assert [(c["endpoint"], c["status"]) for c in fake.create_post_calls()] == [("init", 0)]


def test_a_slow_answer_still_comes(fake: FakeTikTok) -> None:
    headers = bearer(fake)
    fake.add_fault("creator_info", "slow", count=2, delay=0.4)

    with httpx.Client(base_url=fake.base_url, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post(CREATOR_INFO, headers=headers, json={})
    with httpx.Client(base_url=fake.base_url, timeout=5) as patient:
        answered = patient.post(CREATOR_INFO, headers=headers, json={})
    assert answered.status_code == 200 and code_of(answered) == "ok"


def test_a_slowly_received_chunk_takes_long_in_proportion_to_its_size(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    # Given TikTok reading upload bodies at one MB every 2 s, and two uploads: one of 4 MB, one small
    headers = bearer(fake)
    fake.add_fault("upload", "slow_receive", delay=2.0)
    big = video_of_size(4_000_000)
    large = direct_init(api, headers, source=file_upload(len(big))).json()["data"]
    small = direct_init(api, headers, source=file_upload(1000)).json()["data"]
    put = {"Content-Type": "video/mp4"}

    # Then a client that waits 2 s gives up on the large chunk, and has the small one's answer
    with httpx.Client(timeout=2.0) as impatient:
        with pytest.raises(httpx.TimeoutException):
            impatient.put(
                large["upload_url"],
                content=big,
                headers={**put, "Content-Range": f"bytes 0-3999999/{len(big)}"},
            )
        done = impatient.put(
            small["upload_url"], content=VIDEO, headers={**put, "Content-Range": "bytes 0-999/1000"}
        )
    assert done.status_code == 201


def test_fail_processing_ends_the_publish_failed_with_a_webhook(
    clocked: FakeTikTok, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    clocked.webhook_url = receiver.url
    clocked.add_fault("init", "fail_processing", count=1, status="duration_check_failed")
    headers = bearer(clocked)
    with httpx.Client(base_url=clocked.base_url, timeout=5) as api:
        failing = direct_init(api, headers).json()["data"]
        fine = direct_init(api, headers).json()["data"]
        for data in (failing, fine):
            assert put_chunk(data["upload_url"], VIDEO, 0, 1000).status_code == 201
        clock.advance(30)
        failed = fetch_status(api, headers, failing["publish_id"])
        completed = fetch_status(api, headers, fine["publish_id"])

    assert failed["status"] == "FAILED" and failed["fail_reason"] == "duration_check_failed"
    assert completed["status"] == "PUBLISH_COMPLETE" and "fail_reason" not in completed
    events = wait_for(lambda: len(receiver.received) >= 2 and receiver.events())
    failure = next(event for event in events if event["event"] == "post.publish.failed")
    assert failure["content"] == {
        "publish_id": failing["publish_id"],
        "publish_type": "DIRECT_PUBLISH",
        "reason": "duration_check_failed",
    }


def test_a_rate_fault_is_reproducible_and_star_matches_every_api_endpoint(
    fake: FakeTikTok, api: httpx.Client
) -> None:
    def run() -> list[int]:
        fake.reset()
        fake.add_fault("user_info", "http_5xx", rate=0.5)
        token_headers = bearer(fake)
        return [
            api.get("/v2/user/info/", params={"fields": "open_id"}, headers=token_headers).status_code
            for _ in range(30)
        ]

    first, second = run(), run()
    assert first == second and set(first) == {200, 500}

    fake.reset()
    headers = bearer(fake)
    fake.add_fault("*", "http_429")
    assert api.post(CREATOR_INFO, headers=headers, json={}).status_code == 429
    assert refresh(api, "rft.any").status_code == 429
    assert api.get("/_fake/calls").status_code == 200  # the control API is never faulted


def test_unknown_fault_kinds_and_endpoints_are_refused(fake: FakeTikTok) -> None:
    with pytest.raises(ValueError, match="Unknown fault kind"):
        fake.add_fault("init", "gremlins")
    with pytest.raises(ValueError, match="Unknown endpoint"):
        fake.add_fault("publish", "drop")
    with pytest.raises(ValueError, match="cannot apply"):
        fake.add_fault("video_list", "spam_risk")


# --- Webhooks sent on demand ---


def test_send_webhook_signs_with_the_client_secret(fake: FakeTikTok, receiver: WebhookReceiver) -> None:
    fake.webhook_url = receiver.url

    status = fake.send_webhook("authorization.removed", PRIVATE_OPEN_ID, {"reason": 1})

    assert status == 200
    [event] = receiver.events()
    assert event["event"] == "authorization.removed" and event["user_openid"] == PRIVATE_OPEN_ID
    assert event["content"] == {"reason": 1} and event["client_key"] == KEY
    receiver.status = 500
    assert fake.send_webhook("authorization.removed", PRIVATE_OPEN_ID, {}) == 500
    fake.webhook_url = "http://127.0.0.1:9/unreachable/"
    assert fake.send_webhook("authorization.removed", PRIVATE_OPEN_ID, {}) == 0


# --- Control API ---


def test_the_control_api_drives_the_fake_over_http(
    fake: FakeTikTok, api: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Faults over HTTP fire like in-process ones
    armed = api.post("/_fake/faults", json={"endpoint": "init", "kind": "http_429", "count": 1})
    assert armed.status_code == 201 and armed.json()["kind"] == "http_429"
    assert api.post("/_fake/faults", json={"endpoint": "init", "kind": "nonsense"}).status_code == 400
    tokens = api.post("/_fake/tokens", json={"open_id": PUBLIC_OPEN_ID}).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert direct_init(api, headers).status_code == 429
    assert direct_init(api, headers).status_code == 200

    # Calls, filtered; the control API's own calls are not among them
    calls = api.get("/_fake/calls", params={"endpoint": "init"}).json()
    assert [call["status"] for call in calls] == [429, 200]
    assert {call["endpoint"] for call in api.get("/_fake/calls").json()} == {"init"}

    # Expiring a token, sending a webhook, clearing faults
    assert api.post("/_fake/tokens/expire", json={"access_token": tokens["access_token"]}).status_code == 200
    assert code_of(api.post(CREATOR_INFO, headers=headers, json={})) == "access_token_invalid"
    assert api.post("/_fake/tokens/expire", json={"access_token": "act.nope"}).status_code == 404
    assert api.post("/_fake/webhooks", json={"event": "x", "open_id": PUBLIC_OPEN_ID}).status_code == 409
    api.post("/_fake/config", json={"webhook_url": receiver.url})
    sent = api.post("/_fake/webhooks", json={"event": "authorization.removed", "open_id": PUBLIC_OPEN_ID})
    assert sent.json() == {"status": 200} and receiver.events()[0]["event"] == "authorization.removed"
    api.post("/_fake/faults", json={"endpoint": "*", "kind": "http_5xx"})
    assert api.delete("/_fake/faults").json() == {"cleared": 2}  # the spent one too

    # Reset forgets calls and tokens
    assert api.post("/_fake/reset").status_code == 200
    assert api.get("/_fake/calls").json() == []
    assert {creator["open_id"] for creator in api.get("/_fake/creators").json()} == {
        c.open_id for c in CREATORS
    }


# --- The management command ---


def test_run_fake_tiktok_serves_until_interrupted() -> None:
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_fake_tiktok", "--port", "0", "--processing-seconds", "1"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"serving at (http://\S+)", banner)
        assert match, banner
        config = httpx.get(f"{match.group(1)}/_fake/config", timeout=5).json()
        assert config["processing_seconds"] == 1.0 and config["base_url"] == match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0
