"""A fake TikTok over real HTTP, for development, demos and tests. Standard library only.

It implements the contract in docs/TIKTOK_API.md (Login Kit OAuth, Content Posting API, Display API,
webhooks) with TikTok's paths, shapes, codes and statuses, plus a control API under `/_fake/`.

Python API (in-process; the server itself runs in daemon threads)::

    fake = FakeTikTok(client_key="postline-test", client_secret="test-secret", port=0,
                      processing_seconds=0.2, publicly_available_seconds=0.4, webhook_url=None)
    fake.start()                      # fake.base_url == "http://127.0.0.1:<port>"
    fake.issue_tokens(open_id)        # a token pair without the authorize page
    fake.add_fault("init", "drop", count=1)
    fake.create_post_calls(open_id)   # every init/inbox_init that arrived, refused or dropped ones too
                                      # (rate_limited=False: without those answered 429)
    fake.stop()

Endpoints (names used by faults and recorded calls):

| name | request |
|---|---|
| authorize | `GET`/`POST /v2/auth/authorize/` (HTML consent page; form fields in pages.py; PKCE required) |
| token | `POST /v2/oauth/token/` (form; flat body; PKCE verifier checked; refresh tokens rotate) |
| revoke | `POST /v2/oauth/revoke/` (the token's whole grant) |
| user_info | `GET /v2/user/info/?fields=...` |
| creator_info | `POST /v2/post/publish/creator_info/query/` |
| init | `POST /v2/post/publish/video/init/` (Direct Post) |
| inbox_init | `POST /v2/post/publish/inbox/video/init/` |
| content_init | `POST /v2/post/publish/content/init/` (photo posts, below) |
| upload | `PUT /upload/?upload_id=...` (the init's `upload_url`) |
| status | `POST /v2/post/publish/status/fetch/` |
| video_list | `POST /v2/video/list/?fields=...` |
| video_query | `POST /v2/video/query/?fields=...` |

PKCE, as TikTok enforces it for web apps in 2026: the authorize query must carry `code_challenge`, the
HEX SHA-256 of a verifier (64 lowercase hex digits, not base64url), and `code_challenge_method=S256`,
or the page answers 400 naming `code_challenge (errCode 10007)`. The code exchange must send that
`code_verifier` (43-128 of `[A-Za-z0-9-._~]`): missing or malformed is `invalid_request`, one whose
hash is not the challenge is `invalid_grant`.

Data endpoints answer `{"data": {...}, "error": {"code", "message", "log_id"}}`; OAuth errors are flat
`{"error", "error_description", "log_id"}`. Every response also carries an `X-Tt-Logid` header.

Status timeline of a publish: `PROCESSING_UPLOAD` until the last chunk, `PROCESSING_DOWNLOAD` for
`processing_seconds`, then `PUBLISH_COMPLETE` (Direct Post), `SEND_TO_USER_INBOX` (inbox) or `FAILED`
(a fail_processing fault); `publicaly_available_post_id` holds the 19-digit post id from
`publicly_available_seconds` after completion, for Direct Posts with privacy `PUBLIC_TO_EVERYONE` only
(others never become publicly available, as at TikTok). With a `webhook_url`, a background thread sends the
signed events post.publish.complete / inbox_delivered / failed / publicly_available as that happens.

Processing checks the uploaded video as TikTok does (media.py): a container, codec, frame rate
(23-60 fps), frame size (360-4096 px a side) or duration (over the creator's
`max_video_post_duration_sec`) TikTok would not take ends the publish `FAILED` with
`file_format_check_failed`, `frame_rate_check_failed`, `picture_size_check_failed` or
`duration_check_failed`. Only the upload's first and last 4 MiB are kept for that.

Photo posts (content_init), TikTok's contract for them: body `media_type: "PHOTO"`, `post_mode`
`DIRECT_POST` (needs `video.publish`) or `MEDIA_UPLOAD` (the inbox; needs `video.upload`), `post_info`
(`title` at most 90 and `description` at most 4,000 UTF-16 units, `privacy_level` from the creator's
options for a direct post, `disable_comment`, `auto_add_music`, `brand_content_toggle`,
`brand_organic_toggle`; `disable_duet`, `disable_stitch` or `video_cover_timestamp_ms` are
`invalid_param`), `source_info` `{"source": "PULL_FROM_URL", "photo_images": [1-35 URLs],
"photo_cover_index": <index>}`. Every URL must be https on a `verified_domains` host or start with one
of the `verified_url_prefixes` (`url_ownership_unverified`, 403, otherwise); caps count as for video
(direct: the daily cap and bans; inbox: 5 pending shares). The answer is `{"publish_id":
"p_pub_url~v2.…"}` (inbox: `p_inbox_url~v2.…`). Then the fake DOWNLOADS each URL over HTTP, in order,
in a background thread (status `PROCESSING_DOWNLOAD` meanwhile), following no redirect: an answer
other than 200 (a redirect included) or no answer ends the publish `FAILED` with
`photo_pull_failed`; a photo that is not JPEG or WebP by its bytes, or larger than 20 MB, with
`file_format_check_failed`; one over 1080 px on its short side with `picture_size_check_failed`. One
bad photo fails the whole post, without saying which (as TikTok). Otherwise processing runs as for a
video: `PUBLISH_COMPLETE` (direct) or `SEND_TO_USER_INBOX`. `/_fake/publishes/<id>` shows each
download (`photo_downloads`: url, status, bytes, sha256, content_type, location).

An upload chunk answered 416 (out of order, or none expected) carries `Content-Range: bytes 0-LAST/TOTAL`
(`bytes */TOTAL` before the first byte): what the upload has received so far.

Faults (`add_fault(endpoint, kind, count=, rate=, delay=, status=, code=)`, endpoint `"*"` for all):

- `error`: answer `status` (default 400) with `code`, in the endpoint's shape (envelope, flat, page);
- `http_429` (rate_limit_exceeded; `retry_after=N` adds a `Retry-After: N` header);
  `http_5xx` (`status` 500-599, default 500; internal_error or, for OAuth, server_error);
- `slow` (sleep `delay`, then answer; adds to another fault); `slow_receive` (upload: read the
  chunk's body at one MB every `delay` seconds, so a large chunk takes long and a small one little;
  adds to another fault); `drop` (close without answering);
  `timeout` (sleep `delay`, then drop);
- `spam_risk` (init and inbox_init 403, creator_info 200: spam_risk_too_many_posts);
  `expired_token` (bearer endpoints: 401 access_token_invalid); `invalid_grant` (token);
- `fail_processing` (init, inbox_init: that publish ends FAILED with fail_reason `status`, default
  file_format_check_failed).

`code` replaces the default code of any answering kind. `count` limits a fault to its next N firings;
`rate` fires it with that probability (seeded random). Faulted calls are recorded too; a dropped call
keeps status 0 and never creates a publish.

Control API (JSON, never faulted nor recorded):

| request | effect |
|---|---|
| `POST /_fake/faults` `{"endpoint", "kind", "count", "rate", "delay", "status", "code"}` | arm (201) |
| `GET /_fake/faults`, `DELETE /_fake/faults` | list, clear |
| `GET /_fake/calls[?endpoint=init&open_id=...]` | recorded calls, a JSON list |
| `POST /_fake/reset` | forget tokens, publishes, calls, faults |
| `POST /_fake/webhooks` `{"event", "open_id", "content"}` | send a signed webhook: `{"status": ...}` |
| `POST /_fake/tokens` `{"open_id", "scopes"}` | mint a token pair (like `issue_tokens`) |
| `POST /_fake/tokens/expire` `{"access_token"}` | that token answers 401 from now on |
| `GET /_fake/creators` | the fake creators |
| `GET /_fake/publishes[/<publish_id>]` | what the fake knows of publishes (bytes received, sha256...) |
| `GET`/`POST /_fake/config` | read/change `webhook_url`, `processing_seconds`, |
| | `publicly_available_seconds`, `daily_post_cap`, `verified_url_prefixes`, |
| | `upload_origin` (where init's upload URLs point; empty: the origin the API was called on) |
| `GET /_fake/avatars/<username>.svg`, `/_fake/covers/<video_id>.svg` | placeholder images |
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from secrets import token_hex
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from . import webhooks
from .creators import CREATORS, CREATORS_BY_OPEN_ID, CREATORS_BY_USERNAME, FakeCreator
from .media import MAX_PHOTO_BYTES, photo_fail_reason
from .pages import authorize_page, avatar_svg, cover_svg, error_page
from .state import (
    CREATE_POST_ENDPOINTS,
    ENDPOINTS,
    OAUTH_ENDPOINTS,
    ApiError,
    AuthorizeRequest,
    Config,
    FakeState,
    Fault,
    OAuthError,
    PageError,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/v2/auth/authorize/": ("authorize", ("GET", "POST")),
    "/v2/oauth/token/": ("token", ("POST",)),
    "/v2/oauth/revoke/": ("revoke", ("POST",)),
    "/v2/user/info/": ("user_info", ("GET",)),
    "/v2/post/publish/creator_info/query/": ("creator_info", ("POST",)),
    "/v2/post/publish/video/init/": ("init", ("POST",)),
    "/v2/post/publish/inbox/video/init/": ("inbox_init", ("POST",)),
    "/v2/post/publish/content/init/": ("content_init", ("POST",)),
    "/upload/": ("upload", ("PUT",)),
    "/v2/post/publish/status/fetch/": ("status", ("POST",)),
    "/v2/video/list/": ("video_list", ("POST",)),
    "/v2/video/query/": ("video_query", ("POST",)),
}
# A bearer token must hold one of these scopes.
REQUIRED_SCOPES: dict[str, tuple[str, ...]] = {
    "user_info": ("user.info.basic",),
    "creator_info": ("video.publish",),
    "init": ("video.publish",),
    "inbox_init": ("video.upload",),
    "content_init": ("video.publish", "video.upload"),  # which one: by post_mode (state.py)
    "status": ("video.publish", "video.upload"),
    "video_list": ("video.list",),
    "video_query": ("video.list",),
}
DISPLAY_ENDPOINTS = frozenset({"user_info", "video_list", "video_query"})
MAX_JSON_BODY = 1_000_000
# Bigger bodies than this are not read to be thrown away: the connection is closed instead.
MAX_DISCARD = 256_000_000
READ_PIECE = 1 << 20
MB = 1_000_000  # decimal, as TikTok counts


def new_log_id() -> str:
    """Like TikTok's: a UTC timestamp followed by random hex."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + token_hex(10).upper()


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    log_id: str = field(default_factory=new_log_id)
    # Annotations for the recorded call.
    publish_id: str | None = None
    open_id: str | None = None


def json_response(status: int, payload: object, *, log_id: str | None = None) -> Response:
    response = Response(status=status, body=json.dumps(payload).encode())
    if log_id:
        response.log_id = log_id
    return response


def envelope(
    status: int, data: dict[str, object] | None = None, code: str = "ok", message: str = ""
) -> Response:
    log_id = new_log_id()
    payload = {"data": data or {}, "error": {"code": code, "message": message, "log_id": log_id}}
    return json_response(status, payload, log_id=log_id)


def oauth_error(status: int, error: str, description: str) -> Response:
    log_id = new_log_id()
    return json_response(
        status, {"error": error, "error_description": description, "log_id": log_id}, log_id=log_id
    )


def html(status: int, text: str) -> Response:
    return Response(status=status, body=text.encode(), content_type="text/html; charset=utf-8")


def redirect(location: str) -> Response:
    response = html(302, "")
    response.headers.append(("Location", location))
    return response


def fault_response(endpoint: str, fault: Fault) -> Response:
    """The answer a fault gives instead of the endpoint's (drop and timeout never answer).

    The fault's `code` replaces the default code of its kind; kind "error" answers exactly
    `status` (default 400) and `code`, in the endpoint's own error shape."""
    status = fault.status if isinstance(fault.status, int) else None
    defaults: dict[str, tuple[int, str, str, str]] = {
        # kind: (status, data endpoint code, OAuth error, message)
        "error": (400, "", "", "Injected error."),
        "http_429": (
            429,
            "rate_limit_exceeded",
            "rate_limit_exceeded",
            "Too many requests (injected fault).",
        ),
        "http_5xx": (500, "internal_error", "server_error", "Internal server error (injected fault)."),
        # creator_info reports it with HTTP 200, the inits with 403.
        "spam_risk": (
            200 if endpoint == "creator_info" else 403,
            "spam_risk_too_many_posts",
            "",
            "The daily post cap for this user is reached (injected fault).",
        ),
        "expired_token": (401, "access_token_invalid", "", "The access token has expired (injected fault)."),
        "invalid_grant": (400, "", "invalid_grant", "The grant is invalid (injected fault)."),
    }
    if fault.kind not in defaults:
        raise ValueError(f"Fault kind {fault.kind} has no response.")
    default_status, data_code, oauth_code, message = defaults[fault.kind]
    status = status or default_status
    if endpoint == "authorize":
        return html(status, error_page("TikTok could not answer", message))
    if endpoint in OAUTH_ENDPOINTS:
        response = oauth_error(status, fault.code or oauth_code, message)
    else:
        response = envelope(status, code=fault.code or data_code, message=message)
    if fault.retry_after is not None:
        response.headers.append(("Retry-After", str(fault.retry_after)))
    return response


def _download(url: str) -> dict[str, object]:
    """GET one photo URL like TikTok: no redirect followed, at most 20 MB (plus one byte) read."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    result: dict[str, object] = {"url": url, "status": 0, "bytes": 0, "sha256": None, "content_type": None}
    try:
        connection = connection_class(parts.hostname or "", parts.port, timeout=10)
        try:
            connection.request("GET", target or "/", headers={"User-Agent": "fake-tiktok-photo-pull"})
            response = connection.getresponse()
            body = response.read(MAX_PHOTO_BYTES + 1)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return result
    result.update(
        status=response.status,
        bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        content_type=response.getheader("Content-Type"),
        location=response.getheader("Location"),
        body=body,
    )
    return result


def _first(values: dict[str, list[str]]) -> dict[str, str]:
    return {name: items[0] for name, items in values.items() if items}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when a few workers call at once,
    # and each dropped SYN costs the caller a 1 s retransmit: TikTok does not do that.
    request_queue_size = 128
    fake: FakeTikTok


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, delayed ACKs add ~40 ms a call.
    disable_nagle_algorithm = True
    server_version = "FakeTikTok/1.0"
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120

    @property
    def fake(self) -> FakeTikTok:
        return cast(_Server, self.server).fake

    @property
    def state(self) -> FakeState:
        return self.fake.state

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # --- Plumbing ---

    def _handle(self) -> None:
        try:
            self._route()
        except OSError as exc:
            # The client went away mid-answer (or the fake is stopping): nothing left to tell it.
            logger.debug("Connection error: %s", exc)
            self.close_connection = True

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None or not value.strip().isdigit():
            return None
        return int(value)

    def _read_body(self) -> bytes | None:
        """The whole (small) body; None after answering 411/413 itself."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(
                json_response(411, {"error": "Send a Content-Length; chunked bodies are not supported."})
            )
            return None
        length = self._content_length() or 0
        if length > MAX_JSON_BODY:
            self.close_connection = True
            self._send(json_response(413, {"error": "Request body too large."}))
            return None
        return self.rfile.read(length) if length else b""

    def _discard_body(self) -> None:
        """Read and drop the body, so the client can finish sending and read our answer."""
        remaining = self._content_length() or 0
        if remaining > MAX_DISCARD:
            self.close_connection = True
            return
        while remaining > 0:
            piece = self.rfile.read(min(remaining, READ_PIECE))
            if not piece:
                self.close_connection = True
                return
            remaining -= len(piece)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-Tt-Logid", response.log_id)
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        """Close the connection without a word."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _origin(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.fake.base_url

    # --- Routing ---

    def _route(self) -> None:
        split = urlsplit(self.path)
        path = split.path if split.path.endswith("/") else split.path + "/"
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/_fake/"):
            body = self._read_body()
            if body is not None:
                self._send(self._control(path.rstrip("/"), query, body))
            return
        route = ROUTES.get(path)
        if route is None:
            self._discard_body()
            self._send(envelope(404, code="not_found", message=f"No endpoint at {split.path}."))
            return
        endpoint, methods = route
        if endpoint == "upload":
            self._upload(split.path, query)
            return
        body = self._read_body()
        if body is None:
            return
        bearer = self._bearer()
        form: dict[str, str] = {}
        if endpoint in OAUTH_ENDPOINTS or endpoint == "authorize":
            form = _first(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        open_id: str | None = None
        publish_id: str | None = None
        if endpoint in REQUIRED_SCOPES:
            open_id = self.state.open_id_for_token(bearer)
        elif endpoint == "token":
            open_id = self.state.open_id_for_token(form.get("code") or form.get("refresh_token"))
        elif endpoint == "revoke":
            open_id = self.state.open_id_for_token(form.get("token"))
        elif endpoint == "authorize" and form.get("creator") in CREATORS_BY_OPEN_ID:
            open_id = form["creator"]
        if endpoint == "status":
            publish_id = _json_field(body, "publish_id")
        # The caption of a create-post call, so tests can tell which post each call was for.
        title = _post_title(body) if endpoint == "init" else None

        record = self.state.call_start(
            endpoint=endpoint,
            method=self.command,
            path=split.path,
            access_token=bearer if endpoint in REQUIRED_SCOPES else None,
            open_id=open_id,
            publish_id=publish_id,
            title=title,
        )
        action = self.state.take_fault(endpoint)
        if action.delay:
            time.sleep(action.delay)
        fault = action.fault
        if fault is not None and fault.kind in ("drop", "timeout"):
            if fault.kind == "timeout":
                time.sleep(fault.delay)
            self._drop()
            return
        if fault is not None:
            response = fault_response(endpoint, fault)
        elif self.command not in methods:
            response = self._method_not_allowed(endpoint, methods)
        else:
            response = self._endpoint(endpoint, query, body, form, bearer)
        # Recorded before answering, so a client that has its answer also sees its call.
        self.state.call_finish(
            record, response.status, publish_id=response.publish_id, open_id=response.open_id
        )
        self._send(response)

    def _bearer(self) -> str | None:
        scheme, _, value = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def _method_not_allowed(self, endpoint: str, methods: tuple[str, ...]) -> Response:
        message = f"Use {' or '.join(methods)}."
        if endpoint == "authorize":
            response = html(405, error_page("Method not allowed", message))
        elif endpoint in OAUTH_ENDPOINTS:
            response = oauth_error(405, "invalid_request", message)
        else:
            response = envelope(405, code="invalid_request", message=message)
        response.headers.append(("Allow", ", ".join(methods)))
        return response

    def _endpoint(
        self,
        endpoint: str,
        query: dict[str, list[str]],
        body: bytes,
        form: dict[str, str],
        bearer: str | None,
    ) -> Response:
        if endpoint == "authorize":
            return self._authorize(query, body)
        if endpoint in OAUTH_ENDPOINTS:
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type != "application/x-www-form-urlencoded":
                return oauth_error(
                    400, "invalid_request", "The body must be application/x-www-form-urlencoded."
                )
            try:
                if endpoint == "token":
                    payload = self.state.token(form)
                    response = json_response(200, payload)
                    response.open_id = str(payload["open_id"])
                    return response
                self.state.revoke(form)
                log_id = new_log_id()
                return json_response(200, {"log_id": log_id}, log_id=log_id)
            except OAuthError as exc:
                return oauth_error(exc.status, exc.error, exc.description)
        return self._data_endpoint(endpoint, query, body, bearer)

    def _data_endpoint(
        self, endpoint: str, query: dict[str, list[str]], body: bytes, bearer: str | None
    ) -> Response:
        origin = self._origin()
        fields = _first(query).get("fields")
        try:
            grant = self.state.authenticate(bearer, REQUIRED_SCOPES[endpoint])
            payload = _parse_json(
                body, "invalid_params" if endpoint in DISPLAY_ENDPOINTS else "invalid_param"
            )
            if endpoint == "user_info":
                data = self.state.user_info(grant, fields, origin)
            elif endpoint == "creator_info":
                data = self.state.creator_info(grant, origin)
            elif endpoint == "content_init":
                data = self.state.content_init(grant, payload, origin=origin)
                self.fake.pull_photos_later(str(data["publish_id"]))
            elif endpoint in CREATE_POST_ENDPOINTS:
                data = self.state.init(grant, payload, inbox=endpoint == "inbox_init", origin=origin)
            elif endpoint == "status":
                data = self.state.publish_status(grant, payload)
            elif endpoint == "video_list":
                data = self.state.video_list(grant, fields, payload, origin)
            else:
                data = self.state.video_query(grant, fields, payload, origin)
        except ApiError as exc:
            return envelope(exc.status, exc.data, exc.code, exc.message)
        response = envelope(200, data)
        response.open_id = grant.open_id
        publish_id = data.get("publish_id")
        response.publish_id = publish_id if isinstance(publish_id, str) else None
        return response

    # --- Authorize page ---

    def _authorize(self, query: dict[str, list[str]], body: bytes) -> Response:
        params = _first(query)
        posted = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if self.command == "POST":
            # The form's hidden fields echo the query; its `scope` checkboxes are the grant, not the request.
            params.update({name: value for name, value in _first(posted).items() if name != "scope"})
        try:
            request = self.state.authorize_request(params)
        except PageError as exc:
            return html(400, error_page("This authorization request is not valid", str(exc)))
        action = self.path
        if self.command == "GET":
            return html(200, self._consent(action, request.client_key, request, None, "", ""))
        decision = params.get("decision", "")
        if decision == "cancel":
            return redirect(self.state.authorize_deny(request))
        granted = posted.get("scope", [])
        chosen = params.get("creator", "")
        if decision != "authorize":
            return html(
                400,
                self._consent(
                    action, request.client_key, request, granted, chosen, "Choose Authorize or Cancel."
                ),
            )
        try:
            location = self.state.authorize_grant(request, chosen, granted)
        except PageError as exc:
            return html(400, self._consent(action, request.client_key, request, granted, chosen, str(exc)))
        response = redirect(location)
        response.open_id = chosen
        return response

    @staticmethod
    def _consent(
        action: str,
        client_key: str,
        request: AuthorizeRequest,
        granted: list[str] | None,
        chosen: str,
        error: str,
    ) -> str:
        return authorize_page(
            action=action,
            client_key=client_key,
            creators=CREATORS,
            requested_scopes=request.scopes,
            granted_scopes=granted,
            chosen_open_id=chosen,
            hidden=request.hidden_fields(),
            error=error,
        )

    # --- Upload ---

    def _upload(self, path: str, query: dict[str, list[str]]) -> None:
        upload_id = _first(query).get("upload_id")
        publish_id, open_id = self.state.publish_id_for_upload(upload_id)
        record = self.state.call_start(
            endpoint="upload",
            method=self.command,
            path=path,
            access_token=None,
            open_id=open_id,
            publish_id=publish_id,
        )
        action = self.state.take_fault("upload")
        if action.delay:
            time.sleep(action.delay)
        fault = action.fault
        if fault is not None and fault.kind in ("drop", "timeout"):
            if fault.kind == "timeout":
                time.sleep(fault.delay)
            self._drop()
            return
        response = self._receive_chunk(upload_id, fault, action.receive_delay)
        self.state.call_finish(record, response.status, publish_id=publish_id, open_id=open_id)
        self._send(response)

    def _receive_chunk(
        self, upload_id: str | None, fault: Fault | None, receive_delay: float = 0.0
    ) -> Response:
        if fault is not None:
            self._discard_body()
            return fault_response("upload", fault)
        if self.command != "PUT":
            self._discard_body()
            return self._method_not_allowed("upload", ("PUT",))
        try:
            slot = self.state.upload_begin(
                upload_id,
                self.headers.get("Content-Type"),
                self.headers.get("Content-Range"),
                self._content_length(),
            )
        except ApiError as exc:
            self._discard_body()
            response = envelope(exc.status, exc.data, exc.code, exc.message)
            if exc.status == 416:
                received, total = exc.data.get("uploaded_bytes"), exc.data.get("video_size")
                done = f"0-{received - 1}" if isinstance(received, int) and received > 0 else "*"
                response.headers.append(("Content-Range", f"bytes {done}/{total}"))
            return response
        # Bytes are hashed as they arrive; only the file's first and last few MB are kept, for the
        # processing checks (media.py).
        remaining = slot.length
        try:
            while remaining > 0:
                piece = self.rfile.read(min(remaining, READ_PIECE))
                if not piece:
                    break
                slot.receive(piece, slot.length - remaining)
                remaining -= len(piece)
                if receive_delay:
                    time.sleep(receive_delay * len(piece) / MB)
        except OSError:
            pass
        if remaining:
            self.state.upload_abort(slot)
            self.close_connection = True
            return envelope(400, code="invalid_param", message="The body ended before Content-Length bytes.")
        try:
            status, received = self.state.upload_commit(slot)
        except ApiError as exc:
            return envelope(exc.status, exc.data, exc.code, exc.message)
        return envelope(status, {"uploaded_bytes": received})

    # --- Control API ---

    def _control(self, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        fake = self.fake
        method = self.command
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_response(400, {"error": "The body must be JSON."})
        if not isinstance(payload, dict):
            return json_response(400, {"error": "The body must be a JSON object."})
        params = _first(query)
        try:
            if path == "/_fake/faults" and method == "POST":
                fault = fake.add_fault(
                    str(payload.get("endpoint", "")),
                    str(payload.get("kind", "")),
                    count=payload.get("count"),
                    rate=payload.get("rate"),
                    delay=payload.get("delay") or 0.0,
                    status=payload.get("status"),
                    code=payload.get("code"),
                    retry_after=payload.get("retry_after"),
                )
                return json_response(201, fault)
            if path == "/_fake/faults" and method == "GET":
                return json_response(200, fake.state.fault_list())
            if path == "/_fake/faults" and method == "DELETE":
                return json_response(200, {"cleared": fake.clear_faults()})
            if path == "/_fake/calls" and method == "GET":
                return json_response(
                    200, fake.state.calls(endpoint=params.get("endpoint"), open_id=params.get("open_id"))
                )
            if path == "/_fake/reset" and method == "POST":
                fake.reset()
                return json_response(200, {"reset": True})
            if path == "/_fake/webhooks" and method == "POST":
                if not fake.webhook_url:
                    return json_response(409, {"error": "No webhook_url is configured."})
                content = payload.get("content") or {}
                if not isinstance(content, dict):
                    return json_response(400, {"error": "content must be a JSON object."})
                status = fake.send_webhook(
                    str(payload.get("event", "")), str(payload.get("open_id", "")), content
                )
                return json_response(200, {"status": status})
            if path == "/_fake/tokens" and method == "POST":
                return json_response(
                    201, fake.issue_tokens(str(payload.get("open_id", "")), payload.get("scopes"))
                )
            if path == "/_fake/tokens/expire" and method == "POST":
                fake.expire_access_token(str(payload.get("access_token", "")))
                return json_response(200, {"expired": True})
            if path == "/_fake/creators" and method == "GET":
                return json_response(200, [creator.as_dict(self._origin()) for creator in CREATORS])
            if path == "/_fake/publishes" and method == "GET":
                return json_response(
                    200, [fake.publish(publish_id) for publish_id in fake.state.publish_ids()]
                )
            if path.startswith("/_fake/publishes/") and method == "GET":
                return json_response(200, fake.publish(path.removeprefix("/_fake/publishes/")))
            if path == "/_fake/config" and method in ("GET", "POST"):
                if method == "POST":
                    fake.configure(**payload)
                return json_response(200, fake.config_snapshot())
            if path.startswith("/_fake/avatars/") and path.endswith(".svg") and method == "GET":
                creator = CREATORS_BY_USERNAME.get(path.removeprefix("/_fake/avatars/").removesuffix(".svg"))
                if creator is not None:
                    return Response(200, avatar_svg(creator).encode(), "image/svg+xml")
            if path.startswith("/_fake/covers/") and path.endswith(".svg") and method == "GET":
                video_id = path.removeprefix("/_fake/covers/").removesuffix(".svg")
                return Response(200, cover_svg(video_id).encode(), "image/svg+xml")
        except KeyError as exc:
            return json_response(404, {"error": str(exc.args[0]) if exc.args else "Not found."})
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(404, {"error": f"No control endpoint {method} {path}."})


def _parse_json(body: bytes, invalid_code: str) -> object:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(400, invalid_code, "The request body is not valid JSON.") from exc


def _post_title(body: bytes) -> str | None:
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    info = payload.get("post_info") if isinstance(payload, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    return title if isinstance(title, str) else None


def _json_field(body: bytes, name: str) -> str | None:
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    value = payload.get(name) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


class FakeTikTok:
    """The fake TikTok server, its state and its test helpers. See the module docstring."""

    def __init__(
        self,
        *,
        client_key: str = "postline-test",
        client_secret: str = "test-secret",  # noqa: S107 - the fake's default, for tests
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_ttl: float = 7200,
        refresh_token_ttl: float = 180 * 86400,
        processing_seconds: float = 2.0,
        publicly_available_seconds: float = 4.0,
        webhook_url: str | None = None,
        seed: int = 0,
        daily_post_cap: int = 15,
        pending_share_cap: int = 5,
        upload_url_ttl: float = 3600.0,
        verified_domains: Iterable[str] = (),
        verified_url_prefixes: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Beyond TikTok's lifetimes and timings: `seed` drives faults with a `rate`;
        `daily_post_cap` (Direct Posts per creator per rolling 24 h) and `pending_share_cap`
        (inbox shares) are TikTok's caps; `upload_url_ttl` is how long an upload_url works;
        PULL_FROM_URL is accepted only from `verified_domains` (https) or `verified_url_prefixes`
        (the fake never fetches a video URL; it downloads photo URLs);
        `clock` replaces time.time for every lifetime and timeline, so tests can move time."""
        self.state = FakeState(
            Config(
                client_key=client_key,
                client_secret=client_secret,
                access_token_ttl=access_token_ttl,
                refresh_token_ttl=refresh_token_ttl,
                processing_seconds=processing_seconds,
                publicly_available_seconds=publicly_available_seconds,
                daily_post_cap=daily_post_cap,
                pending_share_cap=pending_share_cap,
                upload_url_ttl=upload_url_ttl,
                verified_domains=tuple(domain.lower() for domain in verified_domains),
                verified_url_prefixes=tuple(verified_url_prefixes),
            ),
            seed=seed,
            clock=clock,
        )
        self.host = host
        self.port = port
        self._webhook_url = webhooks.check_webhook_url(webhook_url)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._deliveries: list[dict[str, object]] = []

    # --- Lifecycle ---

    def start(self) -> Self:
        """Bind and serve in daemon threads; with port=0 the OS picks a free port."""
        if self._server is not None:
            raise RuntimeError("The fake TikTok is already running.")
        server = (_Server6 if ":" in self.host else _Server)((self.host, self.port), _Handler)
        server.fake = self
        self.port = int(server.server_address[1])
        self._server = server
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-tiktok-http",
                daemon=True,
            ),
            threading.Thread(target=self._announce_loop, name="fake-tiktok-webhooks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    @property
    def base_url(self) -> str:
        """Where the fake answers, e.g. http://127.0.0.1:40123 (the port is known once started)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104 - display only
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/v2/auth/authorize/"

    # --- Configuration ---

    @property
    def client_key(self) -> str:
        return self.state.config.client_key

    @property
    def client_secret(self) -> str:
        return self.state.config.client_secret

    @property
    def webhook_url(self) -> str | None:
        return self._webhook_url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        self._webhook_url = webhooks.check_webhook_url(value)

    def configure(
        self,
        *,
        webhook_url: object = ...,
        processing_seconds: float | None = None,
        publicly_available_seconds: float | None = None,
        daily_post_cap: int | None = None,
        upload_origin: str | None = None,
        verified_url_prefixes: list[str] | None = None,
    ) -> None:
        """Change settings while running (publishes already processing keep their timeline)."""
        if verified_url_prefixes is not None and not (
            isinstance(verified_url_prefixes, list)
            and all(isinstance(prefix, str) and "://" in prefix for prefix in verified_url_prefixes)
        ):
            raise ValueError(
                "verified_url_prefixes must be a list of URL prefixes such as https://media.example/."
            )
        if upload_origin is not None and not (
            isinstance(upload_origin, str) and (upload_origin == "" or "://" in upload_origin)
        ):
            raise ValueError("upload_origin must be an origin such as http://localhost:8765, or empty.")
        if webhook_url is not ...:
            self.webhook_url = cast(str | None, webhook_url)
        with self.state.lock:
            config = self.state.config
            if processing_seconds is not None:
                config.processing_seconds = _non_negative("processing_seconds", processing_seconds)
            if publicly_available_seconds is not None:
                config.publicly_available_seconds = _non_negative(
                    "publicly_available_seconds", publicly_available_seconds
                )
            if daily_post_cap is not None:
                if (
                    isinstance(daily_post_cap, bool)
                    or not isinstance(daily_post_cap, int)
                    or daily_post_cap < 1
                ):
                    raise ValueError("daily_post_cap must be a positive integer.")
                config.daily_post_cap = daily_post_cap
            if upload_origin is not None:
                config.upload_origin = upload_origin.rstrip("/")
            if verified_url_prefixes is not None:
                config.verified_url_prefixes = tuple(verified_url_prefixes)

    def config_snapshot(self) -> dict[str, object]:
        config = self.state.config
        return {
            "base_url": self.base_url,
            "client_key": config.client_key,
            "webhook_url": self.webhook_url,
            "processing_seconds": config.processing_seconds,
            "publicly_available_seconds": config.publicly_available_seconds,
            "daily_post_cap": config.daily_post_cap,
            "pending_share_cap": config.pending_share_cap,
            "access_token_ttl": config.access_token_ttl,
            "refresh_token_ttl": config.refresh_token_ttl,
            "upload_url_ttl": config.upload_url_ttl,
            "upload_origin": config.upload_origin,
            "verified_url_prefixes": list(config.verified_url_prefixes),
        }

    # --- Photo downloads ---

    def pull_photos_later(self, publish_id: str) -> None:
        """Download a photo post's images in the background, as TikTok does after content/init."""
        thread = threading.Thread(
            target=self._pull_photos, args=(publish_id,), name="fake-tiktok-photos", daemon=True
        )
        thread.start()

    def _pull_photos(self, publish_id: str) -> None:
        downloads: list[dict[str, object]] = []
        reason: str | None = None
        for url in self.state.photo_pull_targets(publish_id):
            download = _download(url)
            downloads.append({key: value for key, value in download.items() if key != "body"})
            body = download.get("body")
            if download["status"] != 200 or not isinstance(body, bytes):
                reason = reason or "photo_pull_failed"  # unreachable, refused or redirected
                continue
            reason = reason or photo_fail_reason(body)
        self.state.photo_pull_done(publish_id, downloads, reason)

    # --- Test helpers ---

    @property
    def creators(self) -> tuple[FakeCreator, ...]:
        return CREATORS

    @property
    def calls(self) -> list[dict[str, object]]:
        """Every API call so far (copies), in arrival order."""
        return self.state.calls()

    def create_post_calls(
        self, open_id: str | None = None, *, rate_limited: bool = True
    ) -> list[dict[str, object]]:
        """Every init and inbox_init call that arrived, whatever its answer (refused, faulted, dropped).

        `rate_limited=False` leaves out those answered 429: they created nothing, and the app sends
        them again, so "at most one create-post call per post" counts the others."""
        return [
            call
            for call in self.state.calls(open_id=open_id)
            if call["endpoint"] in CREATE_POST_ENDPOINTS and (rate_limited or call["status"] != 429)
        ]

    def reset(self) -> None:
        self.state.reset()
        with self.state.lock:
            self._deliveries.clear()

    def add_fault(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int | None = None,
        rate: float | None = None,
        delay: float = 0.0,
        status: int | str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> dict[str, object]:
        """Arm a fault; returns it (with its id). Raises ValueError for an unknown endpoint or kind."""
        fault = self.state.add_fault(
            endpoint,
            kind,
            count=count,
            rate=rate,
            delay=delay,
            status=status,
            code=code,
            retry_after=retry_after,
        )
        return fault.as_dict()

    def clear_faults(self) -> int:
        return self.state.clear_faults()

    def issue_tokens(
        self, open_id: str, scopes: str | list[str] | tuple[str, ...] | None = None
    ) -> dict[str, object]:
        """A token pair for a creator (all scopes unless given), shaped like the token endpoint's body."""
        return self.state.issue_tokens(open_id, scopes)

    def expire_access_token(self, access_token: str) -> None:
        """From now on this token answers 401 access_token_invalid (KeyError if unknown)."""
        self.state.expire_access_token(access_token)

    def publish(self, publish_id: str) -> dict[str, object]:
        """What the fake knows about a publish: status, bytes received, sha256... (KeyError if unknown)."""
        return self.state.publish_snapshot(publish_id)

    def posts_in_last_day(self, open_id: str) -> int:
        return self.state.posts_in_last_day(open_id)

    @property
    def webhook_deliveries(self) -> list[dict[str, object]]:
        """Webhooks sent so far: event, open_id, content and the receiver's status (0: no answer)."""
        with self.state.lock:
            return [dict(delivery) for delivery in self._deliveries]

    def send_webhook(self, event: str, open_id: str, content: dict[str, object]) -> int:
        """POST a signed webhook to webhook_url now; the receiver's HTTP status (0 if none)."""
        if not self.webhook_url:
            raise RuntimeError("No webhook_url is set.")
        return self._deliver(WebhookEvent(event=event, open_id=open_id, content=content))

    def _deliver(self, event: WebhookEvent) -> int:
        url = self.webhook_url
        if not url:
            return 0
        status = webhooks.deliver(
            url,
            client_key=self.client_key,
            client_secret=self.client_secret,
            event=event.event,
            open_id=event.open_id,
            content=event.content,
        )
        with self.state.lock:
            self._deliveries.append(
                {
                    "event": event.event,
                    "open_id": event.open_id,
                    "content": event.content,
                    "status": status,
                    "time": time.time(),
                }
            )
        return status

    def _announce_loop(self) -> None:
        """Send the webhooks that status changes call for; a failed delivery is logged, never raised."""
        while not self._stopping.wait(0.05):
            try:
                for event in self.state.due_webhooks():
                    if self.webhook_url:
                        self._deliver(event)
            except Exception:
                logger.exception("The fake TikTok failed to send a webhook.")


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number.")
    return float(value)


__all__ = ["CREATORS", "ENDPOINTS", "FakeTikTok"]
