"""The API client against the fake TikTok over a real socket: results and error classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.fake_tiktok import rules
from apps.fake_tiktok.server import FakeTikTok
from apps.tiktok.client import TikTokClient
from apps.tiktok.errors import ErrorKind, TikTokError, fail_reason_kind
from apps.tiktok.uploads import MB, chunk_plan

CREATOR = "fake-open-public-001"
RETRYABLE, FINAL, REAUTH = ErrorKind.RETRYABLE, ErrorKind.FINAL, ErrorKind.REAUTH


@pytest.fixture
def client(tiktok: FakeTikTok) -> TikTokClient:
    return TikTokClient(limiter=None, timeout=2.0)


@pytest.fixture
def token(tiktok: FakeTikTok) -> str:
    return str(tiktok.issue_tokens(CREATOR)["access_token"])


def direct_init(client: TikTokClient, token: str, **post: Any) -> Any:
    info = {"privacy_level": "PUBLIC_TO_EVERYONE", "title": "hello", **post}
    return client.init_direct_post(
        access_token=token, post_info=info, source_info=chunk_plan(1000).source_info()
    )


def raised(call: Callable[[], Any]) -> TikTokError:
    with pytest.raises(TikTokError) as caught:
        call()
    return caught.value


def test_user_and_creator_info_are_typed(client: TikTokClient, token: str) -> None:
    user = client.user_info(access_token=token)
    creator = client.creator_info(access_token=token)
    assert user.open_id == CREATOR and user.follower_count is not None
    assert "PUBLIC_TO_EVERYONE" in creator.privacy_level_options and creator.max_video_post_duration_sec > 0


# Every code of TIKTOK_API.md, produced by the fake on the endpoint that returns it.
ENVELOPE_CODES = [
    ("init", 400, "invalid_param", FINAL),
    ("init", 403, "spam_risk_too_many_posts", FINAL),
    ("init", 403, "spam_risk_user_banned_from_posting", FINAL),
    ("init", 403, "reached_active_user_cap", FINAL),
    ("init", 403, "unaudited_client_can_only_post_to_private_accounts", FINAL),
    ("init", 403, "url_ownership_unverified", FINAL),
    ("init", 403, "privacy_level_option_mismatch", FINAL),
    ("init", 401, "access_token_invalid", REAUTH),
    ("init", 401, "scope_not_authorized", REAUTH),
    ("init", 429, "rate_limit_exceeded", RETRYABLE),
    ("init", 500, "internal_error", RETRYABLE),
    ("inbox_init", 403, "spam_risk_too_many_pending_share", FINAL),
    ("creator_info", 200, "spam_risk_too_many_posts", FINAL),
    ("creator_info", 200, "spam_risk_user_banned_from_posting", FINAL),
    ("creator_info", 200, "reached_active_user_cap", FINAL),
    ("user_info", 400, "invalid_params", FINAL),
    ("status", 503, "internal_error", RETRYABLE),
]


@pytest.mark.parametrize(("endpoint", "status", "code", "kind"), ENVELOPE_CODES)
def test_envelope_errors_map_to_their_class(
    client: TikTokClient,
    token: str,
    tiktok: FakeTikTok,
    endpoint: str,
    status: int,
    code: str,
    kind: ErrorKind,
) -> None:
    tiktok.add_fault(endpoint, "error", count=1, status=status, code=code)
    calls = {
        "init": lambda: direct_init(client, token),
        "inbox_init": lambda: client.init_inbox(
            access_token=token, source_info=chunk_plan(1000).source_info()
        ),
        "creator_info": lambda: client.creator_info(access_token=token),
        "user_info": lambda: client.user_info(access_token=token),
        "status": lambda: client.publish_status(access_token=token, publish_id="v_pub_file~v2-1.unknown"),
    }
    error = raised(calls[endpoint])
    assert (error.code, error.kind, error.http_status) == (code, kind, status)
    assert error.log_id  # kept for support
    assert error.human_message() and code not in ("",)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("invalid_grant", REAUTH),
        ("invalid_client", FINAL),
        ("access_denied", FINAL),
        ("invalid_request", FINAL),
        ("server_error", RETRYABLE),
        ("temporarily_unavailable", RETRYABLE),
    ],
)
def test_flat_oauth_errors_map_to_their_class(
    client: TikTokClient, tiktok: FakeTikTok, code: str, kind: ErrorKind
) -> None:
    refresh = tiktok.issue_tokens(CREATOR)["refresh_token"]
    tiktok.add_fault("token", "error", count=1, status=400 if kind != RETRYABLE else 503, code=code)
    error = raised(lambda: client.refresh(refresh_token=refresh))
    assert (error.code, error.kind) == (code, kind)


def test_real_oauth_refusals(client: TikTokClient, tiktok: FakeTikTok) -> None:
    assert raised(lambda: client.refresh(refresh_token="never-issued")).kind == REAUTH
    wrong = TikTokClient(limiter=None, client_secret="wrong-secret")
    refresh = tiktok.issue_tokens(CREATOR)["refresh_token"]
    assert raised(lambda: wrong.refresh(refresh_token=refresh)).code == "invalid_client"


def test_http_200_refusal_is_read_from_the_envelope(client: TikTokClient, tiktok: FakeTikTok) -> None:
    token = tiktok.issue_tokens("fake-open-banned-005")["access_token"]
    error = raised(lambda: client.creator_info(access_token=token))
    assert (
        error.http_status == 200
        and error.code == "spam_risk_user_banned_from_posting"
        and error.kind == FINAL
    )


def test_real_privacy_mismatch_and_expired_token(
    client: TikTokClient, token: str, tiktok: FakeTikTok
) -> None:
    error = raised(lambda: direct_init(client, token, privacy_level="FOLLOWER_OF_CREATOR"))
    assert (error.code, error.kind) == ("privacy_level_option_mismatch", FINAL)
    tiktok.expire_access_token(token)
    assert raised(lambda: client.creator_info(access_token=token)).kind == REAUTH


def test_upload_statuses_map_to_their_class(client: TikTokClient, token: str, tiktok: FakeTikTok) -> None:
    plan = chunk_plan(6 * MB)  # one chunk
    init = client.init_direct_post(
        access_token=token,
        post_info={"privacy_level": "SELF_ONLY", "title": "t"},
        source_info=plan.source_info(),
    )
    data = b"\0" * plan.video_size
    wrong_start = raised(
        lambda: client.upload_chunk(
            upload_url=init.upload_url,
            data=data[:100],
            first=100,
            last=199,
            total=plan.video_size,
            content_type="video/mp4",
        )
    )
    assert (wrong_start.code, wrong_start.kind) == ("upload_range_mismatch", RETRYABLE)
    tiktok.add_fault("upload", "http_5xx", count=1, status=502)
    assert (
        raised(
            lambda: client.upload_chunk(
                upload_url=init.upload_url,
                data=data,
                first=0,
                last=plan.video_size - 1,
                total=plan.video_size,
                content_type="video/mp4",
            )
        ).kind
        == RETRYABLE
    )
    assert (
        client.upload_chunk(
            upload_url=init.upload_url,
            data=data,
            first=0,
            last=plan.video_size - 1,
            total=plan.video_size,
            content_type="video/mp4",
        )
        == 201
    )
    unknown = init.upload_url.replace("upload_id=", "upload_id=nope")
    assert (
        raised(
            lambda: client.upload_chunk(
                upload_url=unknown, data=data[:10], first=0, last=9, total=10, content_type="video/mp4"
            )
        ).kind
        == FINAL
    )
    bad_type = raised(
        lambda: client.upload_chunk(
            upload_url=init.upload_url, data=data[:10], first=0, last=9, total=10, content_type="text/plain"
        )
    )
    assert bad_type.kind == FINAL


def test_dropped_connection_on_init_is_an_unknown_outcome(
    client: TikTokClient, token: str, tiktok: FakeTikTok
) -> None:
    tiktok.add_fault("init", "drop", count=1)
    error = raised(lambda: direct_init(client, token))
    assert error.kind == RETRYABLE and error.maybe_applied
    assert len(tiktok.create_post_calls()) == 1


def test_timeout_is_retryable_but_maybe_applied(tiktok: FakeTikTok, token: str) -> None:
    tiktok.add_fault("init", "slow", count=1, delay=1.5)
    error = raised(lambda: direct_init(TikTokClient(limiter=None, timeout=0.5), token))
    assert error.code == "timeout" and error.maybe_applied


def test_unreachable_tiktok_is_retryable_and_not_applied() -> None:
    client = TikTokClient(limiter=None, base_url="http://127.0.0.1:9", timeout=1.0)
    error = raised(lambda: client.creator_info(access_token="x"))
    assert error.kind == RETRYABLE and not error.maybe_applied


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("internal", RETRYABLE),
        ("video_pull_failed", RETRYABLE),
        ("file_format_check_failed", FINAL),
        ("duration_check_failed", FINAL),
        ("frame_rate_check_failed", FINAL),
        ("picture_size_check_failed", FINAL),
        ("publish_cancelled", FINAL),
        ("auth_removed", FINAL),
        ("spam_risk_too_many_posts", FINAL),
        ("spam_risk_user_banned_from_posting", FINAL),
        ("spam_risk_text", FINAL),
        ("spam_risk", FINAL),
    ],
)
def test_status_fail_reasons(reason: str, kind: ErrorKind) -> None:
    assert fail_reason_kind(reason) == kind


def test_chunk_arithmetic_for_tiktoks_example_and_4gb_class_files() -> None:
    example = chunk_plan(50_000_123, 10_000_000)
    assert example.total_chunk_count == 5 and example.ranges()[-1] == (40_000_000, 50_000_122)
    small = chunk_plan(3 * MB)
    assert (small.chunk_size, small.total_chunk_count) == (3 * MB, 1)
    big = chunk_plan(3_999_999_999)  # just under 4 GB: 10 MB chunks would need > 1,000
    assert big.total_chunk_count <= 1000 and 5 * MB <= big.chunk_size <= 64 * MB
    last_first, last_last = big.ranges()[-1]
    assert last_last == big.video_size - 1 and last_last - last_first + 1 <= 128 * MB
    assert sum(b - a + 1 for a, b in big.ranges()) == big.video_size
    with pytest.raises(ValueError, match="4 GB"):
        chunk_plan(4_000_000_001)


@pytest.mark.parametrize(
    ("size", "chunk", "count"),
    [
        (25 * MB, 10 * MB, 2),  # small videos: 10 MB chunks, the last absorbs the rest
        (255 * MB, 10 * MB, 25),
        (1_000 * MB, 64 * MB, 15),  # large ones: chunks as large as TikTok takes (the last is 104 MB)
        (4_000 * MB, 64 * MB, 62),
    ],
)
def test_large_videos_go_in_the_largest_chunks_tiktok_takes(size: int, chunk: int, count: int) -> None:
    plan = chunk_plan(size)
    assert (plan.chunk_size, plan.total_chunk_count) == (chunk, count)
    rules.chunk_plan(plan.video_size, plan.chunk_size, plan.total_chunk_count)  # the fake accepts it
