"""Prometheus metrics (prometheus-client).

Events are counted where they happen, in whichever process: web workers (the composer's
creator_info calls), Dramatiq workers (publishing) or the scheduler. Under gunicorn and
Dramatiq one host runs several processes, so prometheus-client's multiprocess mode is used:
with PROMETHEUS_MULTIPROC_DIR set (the image sets it), every process writes its samples to
files there, and an exposition sums the files of its host: `/metrics` on the web process
(token), `run_worker --metrics-port` on a worker host (internal port). Without it (development,
tests) each process exposes its own samples.

State is read at scrape time, not counted: queue depth and dead letters per queue, from Redis,
the same for every process that asks.

Label values are fixed sets (endpoints, TikTok's documented error codes, post states, queue
names): never an agency, a post or a free-form value, so the series stay bounded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dramatiq
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Any process may be the first on its host (a management command, say): samples need it.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

PUBLISH_LATENESS = Histogram(
    "postline_publish_lateness_seconds",
    "Seconds between a post's scheduled time and TikTok accepting its init.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, float("inf")),
    registry=None,
)
POSTS_FINAL = Counter(
    "postline_posts_final",
    "Posts that reached a final state, by state.",
    ["state"],
    registry=None,
)
TIKTOK_REQUESTS = Histogram(
    "postline_tiktok_request_seconds",
    "Calls to TikTok's API by endpoint and outcome (`ok` or TikTok's error code), with latency.",
    ["endpoint", "code"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, float("inf")),
    registry=None,
)
EVENT_METRICS = (PUBLISH_LATENESS, POSTS_FINAL, TIKTOK_REQUESTS)

FINAL_STATES = frozenset({"published", "failed", "needs_attention", "cancelled"})
OTHER = "other"
_allowed_codes: set[str] = {"ok", "timeout", "network_error", "rate_limited_locally", "exception"}


def tiktok_codes_allow(codes: set[str]) -> None:
    """The TikTok error codes that get a label of their own (any other is `other`)."""
    _allowed_codes.update(codes)


def post_final_count(state: str) -> None:
    if state in FINAL_STATES:
        POSTS_FINAL.labels(state=state).inc()


def publish_lateness_observe(seconds: float) -> None:
    seconds = max(0.0, seconds)
    PUBLISH_LATENESS.observe(seconds)
    _lateness_window_add(seconds)


# --- Lateness over the last hour (the operators' console) ---
# Prometheus answers "p99 over the last hour" from its own series; the console has no Prometheus to
# ask, so each observation is also counted in Redis, per minute and per bucket of the histogram
# above: 60 small hashes hold the last hour, whatever the number of posts.
LATENESS_WINDOW_SECONDS = 3600
_LATENESS_BUCKETS: tuple[float, ...] = tuple(PUBLISH_LATENESS._upper_bounds)


def _lateness_key(client_namespace: str, minute: int) -> str:
    return f"{client_namespace}:lateness:{minute}"


def _lateness_window_add(seconds: float) -> None:
    broker: Any = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        return
    bucket = next(i for i, bound in enumerate(_LATENESS_BUCKETS) if seconds <= bound)
    key = _lateness_key(broker.namespace, int(time.time()) // 60)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, str(bucket), 1)
            pipe.expire(key, LATENESS_WINDOW_SECONDS + 120)
            pipe.execute()
    except Exception:  # a figure for the console: never worth failing a publish over
        logger.warning("Could not count a publish's lateness in Redis", exc_info=True)


def publish_lateness_quantile(quantile: float = 0.99) -> tuple[float | None, int]:
    """The upper bound of the histogram bucket holding the `quantile` of the publishes of the last
    hour, and how many publishes there were ((None, 0) without any). "p99 ≤ 30 s" reads: 99 % of
    the posts that went out in the last hour were at most 30 seconds late."""
    broker: Any = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        return None, 0
    now_minute = int(time.time()) // 60
    counts = [0] * len(_LATENESS_BUCKETS)
    with client.pipeline(transaction=False) as pipe:
        for minute in range(now_minute - LATENESS_WINDOW_SECONDS // 60 + 1, now_minute + 1):
            pipe.hgetall(_lateness_key(broker.namespace, minute))
        for answer in pipe.execute():
            for bucket, count in answer.items():
                index = int(bucket)
                if 0 <= index < len(counts):
                    counts[index] += int(count)
    total = sum(counts)
    if not total:
        return None, 0
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= quantile * total:
            return _LATENESS_BUCKETS[index], total
    return _LATENESS_BUCKETS[-1], total


@contextmanager
def tiktok_call_observed(endpoint: str) -> Iterator[None]:
    """Time one call to TikTok; its label is `ok` or the code of the error it raised."""
    started = time.perf_counter()
    code = "ok"
    try:
        yield
    except Exception as exc:
        code = str(getattr(exc, "code", "exception"))
        raise
    finally:
        TIKTOK_REQUESTS.labels(endpoint=endpoint, code=code if code in _allowed_codes else OTHER).observe(
            time.perf_counter() - started
        )


def observed_call[F: Callable[..., Any]](endpoint: str | None = None) -> Callable[[F], F]:
    """Decorator form of `tiktok_call_observed`: a fixed endpoint, or the call's `endpoint`
    argument (first positional or keyword)."""

    def decorate(func: F) -> F:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            name = endpoint or kwargs.get("endpoint") or (args[0] if args else "unknown")
            with tiktok_call_observed(str(name)):
                return func(self, *args, **kwargs)

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper  # type: ignore[return-value]

    return decorate


def broker_queue_state() -> list[tuple[str, int, int]]:
    """(queue, depth, dead letters) per declared queue, read from Redis in one round trip; depth
    is the messages enqueued and not yet acknowledged, the delayed ones (retries) included."""
    broker: Any = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        return []
    queues = sorted(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.hlen(f"{broker.namespace}:{queue}.msgs")
            pipe.hlen(f"{broker.namespace}:{queue}.DQ.msgs")
            pipe.zcard(f"{broker.namespace}:{queue}.XQ")
        answers = pipe.execute()
    state = []
    for i, queue in enumerate(queues):
        waiting, delayed, dead_count = answers[3 * i : 3 * i + 3]
        state.append((queue, int(waiting) + int(delayed), int(dead_count)))
    return state


class BrokerStateCollector(Collector):
    """Queue depth (messages enqueued and not yet acknowledged) and dead letters, per queue."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "postline_queue_depth", "Messages waiting or in progress, per queue.", labels=["queue"]
        )
        dead = GaugeMetricFamily(
            "postline_dead_letters", "Messages in the dead-letter queue, per queue.", labels=["queue"]
        )
        for queue, depth_count, dead_count in broker_queue_state():
            depth.add_metric([queue], depth_count)
            dead.add_metric([queue], dead_count)
        yield depth
        yield dead


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def metrics_registry(*, with_broker_state: bool = True) -> CollectorRegistry:
    """This host's metrics: every process's samples in multiprocess mode, else this one's."""
    registry = CollectorRegistry(auto_describe=True)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        for metric in EVENT_METRICS:
            registry.register(metric)
    if with_broker_state:
        registry.register(BrokerStateCollector())
    return registry


def metrics_render(*, with_broker_state: bool = True) -> bytes:
    return generate_latest(metrics_registry(with_broker_state=with_broker_state))
