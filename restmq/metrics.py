"""The broker's Prometheus metrics: the metric objects and pure helpers, no I/O.

Counters and histograms are recorded where things happen (the HTTP middleware, the queue
store, the delivery hub) and live in ``REGISTRY``. With ``--workers N`` the server points
``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own before it starts the workers, so
prometheus-client keeps every value in a per-process file there and a scrape on any worker
sums them all (``restmq.http.metrics`` picks the collector). Queue depths are not recorded
here: they are read from Redis at scrape time, so they are cluster-wide, and turned into
metric families by ``depth_families``.

Per-queue labels are bounded: a process labels at most ``MAX_QUEUE_LABELS`` distinct queues,
and counts the rest under ``OTHER_QUEUE``, so a flood of one-off queue names cannot grow the
exposition without limit. The depth gauges are bounded the same way: ``DepthSummary`` keeps
per-queue series for the ``MAX_QUEUE_SERIES`` queues that hold the most messages and sums
the others under ``OTHER_QUEUE``.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from restmq.types import QueueStats

MAX_QUEUE_LABELS = 1000
MAX_QUEUE_SERIES = 1000  # queues with depth series of their own in a scrape
OTHER_QUEUE = "(other)"
OTHER_METHOD = "OTHER"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
UNMATCHED_ROUTE = "(unmatched)"
CLIENT_CLOSED = 499  # the request was cancelled (client left) before any answer was sent

REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "restmq_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "restmq_http_request_duration_seconds",
    "Time from a request's arrival until its response headers are sent "
    "(for a stream: until the stream is open).",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
MESSAGES_IN = Counter(
    "restmq_messages_in",
    "Messages accepted into a queue (every add, from any route or adapter).",
    ["queue"],
    registry=REGISTRY,
)
MESSAGES_OUT = Counter(
    "restmq_messages_out",
    "Messages handed out of a queue: via=take (polled), ack (a lease acknowledged), "
    "stream (written to one streaming consumer; a broadcast counts once per consumer).",
    ["queue", "via"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "restmq_delivery_latency_seconds",
    "Time from a claimed message reaching this daemon over pub/sub until a streaming "
    "consumer's transport has written it (includes the wait in the consumer's outbox).",
    ["policy"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5),
    registry=REGISTRY,
)

_labelled: set[str] = set()


def queue_label(queue: str) -> str:
    """The label value for ``queue``: itself, or ``OTHER_QUEUE`` past the cap."""
    if queue in _labelled:
        return queue
    if len(_labelled) < MAX_QUEUE_LABELS:
        _labelled.add(queue)
        return queue
    return OTHER_QUEUE


def method_label(method: str) -> str:
    """The label value for an HTTP method: a known method, else ``OTHER_METHOD``."""
    return method if method in METHODS else OTHER_METHOD


# labels() costs a lock and a dict lookup with tuple building; the children are cached per
# label values (the label sets are bounded: routes are templates, queues are capped).
@functools.lru_cache(maxsize=4096)
def _requests(method: str, route: str, status: int) -> Counter:
    return HTTP_REQUESTS.labels(method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _latency(method: str, route: str) -> Histogram:
    return HTTP_LATENCY.labels(method, route)


@functools.lru_cache(maxsize=4096)
def _messages_in(queue: str) -> Counter:
    return MESSAGES_IN.labels(queue_label(queue))


def messages_in(queue: str, count: int = 1) -> None:
    _messages_in(queue).inc(count)


@functools.lru_cache(maxsize=4096)
def _messages_out(queue: str, via: str) -> Counter:
    return MESSAGES_OUT.labels(queue_label(queue), via)


def messages_out(queue: str, via: str, count: int = 1) -> None:
    if count:
        _messages_out(queue, via).inc(count)


def delivered(queue: str, roundrobin: bool, seconds: float) -> None:
    """One streamed message written to its consumer, ``seconds`` after it arrived."""
    messages_out(queue, "stream")
    DELIVERY_LATENCY.labels("roundrobin" if roundrobin else "broadcast").observe(seconds)


def request_done(method: str, route: str, status: int, seconds: float | None) -> None:
    """One answered request; ``seconds`` is None when no answer was sent."""
    method = method_label(method)
    _requests(method, route, status).inc()
    if seconds is not None:
        _latency(method, route).observe(seconds)


class Depth(NamedTuple):
    """One queue's counts for the depth gauges (``QueueStats`` has the same fields)."""

    name: str
    len: int
    leased: int
    delayed: int
    dead: int
    consumers: int


Counts = QueueStats | Depth


def _held(stats: Counts) -> int:
    return stats.len + stats.leased + stats.delayed + stats.dead


@dataclass
class DepthSummary:
    """The queue depths of one read, fed queue by queue, in bounded memory: the ``top``
    queues holding the most messages (waiting + leased + delayed + dead; then the most
    consumers, then by name) keep series of their own, the others are summed under
    ``OTHER_QUEUE``."""

    top: int = MAX_QUEUE_SERIES
    queues: int = 0
    _best: list[tuple[int, int, str, Depth]] = field(default_factory=list)
    _other: list[int] = field(default_factory=lambda: [0] * 5)
    _others: int = 0

    def add(self, depth: Depth) -> None:
        """Count one queue (each queue once)."""
        self.queues += 1
        entry = (_held(depth), depth.consumers, depth.name, depth)
        if len(self._best) < self.top:
            heapq.heappush(self._best, entry)
            return
        if self._best and entry[:3] > self._best[0][:3]:
            entry = heapq.heapreplace(self._best, entry)
        self._sum(entry[3])

    def _sum(self, depth: Depth) -> None:
        self._others += 1
        for i, value in enumerate(depth[1:]):
            self._other[i] += value

    def series(self) -> list[Depth]:
        """The queues with series of their own (most messages first), then, when some
        queues were summed, their sums under ``OTHER_QUEUE``."""
        best = [entry[3] for entry in sorted(self._best, key=lambda e: e[:3], reverse=True)]
        if not self._others:
            return best
        return [*best, Depth(OTHER_QUEUE, *self._other)]


def depth_families(
    found: Iterable[Counts], storage_up: bool, total: int | None = None, age: float = 0.0
) -> list[Metric]:
    """Gauges of the queues' counts as read from Redis; ``total`` is the number of queues
    (by default, how many ``found`` holds), ``age`` how many seconds ago they were read."""
    up = GaugeMetricFamily("restmq_storage_up", "1 when Redis answered this scrape, else 0.")
    up.add_metric([], 1 if storage_up else 0)
    if not storage_up:
        return [up]
    queues = GaugeMetricFamily("restmq_queues", "Queues in the registry.")
    depth = GaugeMetricFamily(
        "restmq_queue_messages",
        "Messages of a queue by state: waiting, leased, delayed, dead (in <queue>:dead); "
        f"past the {MAX_QUEUE_SERIES} queues that hold the most, the others are summed "
        f'under queue="{OTHER_QUEUE}".',
        labels=["queue", "state"],
    )
    consumers = GaugeMetricFamily(
        "restmq_queue_consumers",
        "Streaming consumers of a queue on every daemon (summed like restmq_queue_messages).",
        labels=["queue"],
    )
    read_age = GaugeMetricFamily(
        "restmq_queue_depths_age_seconds",
        "How long ago the queue counts of this scrape were read (0 unless a read of very "
        "many queues outlasted the scrape's deadline and the previous one is shown).",
    )
    count = 0
    for stats in found:
        count += 1
        for state, value in _states(stats):
            depth.add_metric([stats.name, state], value)
        consumers.add_metric([stats.name], stats.consumers)
    queues.add_metric([], count if total is None else total)
    read_age.add_metric([], round(age, 3))
    return [up, queues, depth, consumers, read_age]


def _states(stats: Counts) -> list[tuple[str, int]]:
    return [
        ("waiting", stats.len),
        ("leased", stats.leased),
        ("delayed", stats.delayed),
        ("dead", stats.dead),
    ]
