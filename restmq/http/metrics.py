"""``GET /metrics`` (Prometheus text format) and the request metrics middleware.

How requests are measured: the middleware (the outermost one) stamps each request's arrival;
the application's ``on_response_prepare`` signal, which fires when any response's headers
are about to be sent (a JSON answer, an error, a redirect, a static file, the start of a
comet/SSE stream or a WebSocket's 101), counts the request by method, route *template*
(``/q/{queue}``, never the raw path, so the label set stays bounded) and status, and
observes the time since arrival. A request cancelled before any answer (a client that left
a long poll) is counted with status 499 and no latency.

A scrape answers the counters and histograms of ``restmq.metrics`` — of every worker when
the server runs several (prometheus-client's multiprocess files) — plus queue depths and
consumers read from Redis at that moment (``restmq_storage_up`` is 0 when Redis did not
answer; the counters are still reported).

Queue depths at scale: they are read a batch of queues at a time (one read-only script call
per batch of queues sharing a hash slot), the event loop running between batches, and only
the ``MAX_QUEUE_SERIES`` queues holding the most messages get series of their own; the others
are summed under ``queue="(other)"`` (``restmq.metrics.DepthSummary``). A read of very many
queues that would outlast the scrape's deadline goes on in the background and the scrape
shows the previous read, with its age (``DepthReader``). So a broker with 100,000 queues
answers a scrape of bounded size, in time, without stalling its other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import Context
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from restmq import deadline, metrics
from restmq.engine.store import QueueStore
from restmq.errors import OutcomeUnknown, StorageError, StorageUnavailable
from restmq.http.context import CTX, ctx
from restmq.http.routing import route_template

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ARRIVED = web.RequestKey("restmq_arrived", float)
ANSWERED = web.RequestKey("restmq_answered", bool)
# The classic text format, which every Prometheus reads (our names need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEADLINE_MARGIN = 0.5  # seconds of a scrape's deadline kept to answer
SLOW_READ = 1.0  # seconds: a depth read that took longer may be shown again, while younger
REUSE_FACTOR = 4  # than this many times its duration
log = logging.getLogger("restmq.http")


def _route(request: web.Request) -> str:
    template = route_template(request)
    return metrics.UNMATCHED_ROUTE if template is None else template


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stamp the arrival; count a request cancelled before it was answered."""
    request[ARRIVED] = time.perf_counter()
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not request.get(ANSWERED):
            metrics.request_done(request.method, _route(request), metrics.CLIENT_CLOSED, None)
        raise


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    arrived = request.get(ARRIVED)
    if arrived is None or request.get(ANSWERED):
        return
    request[ANSWERED] = True
    elapsed = time.perf_counter() - arrived
    metrics.request_done(request.method, _route(request), response.status, elapsed)


def install(app: web.Application) -> None:
    """Count every response of ``app`` (the middleware is added by the route table).

    The ``*_created`` series are turned off: multiprocess mode cannot report them, and one
    exposition whatever the number of workers is easier to alert on.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    app.on_response_prepare.append(_on_prepare)
    depths = app[DEPTHS] = DepthReader(app[CTX].store)
    app.on_shutdown.append(depths.close)


class _Families(Collector):
    """A collector that yields metric families computed before the scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


class _Local(Collector):
    """The in-process registry, as a collector of the per-scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return metrics.REGISTRY.collect()


async def _summarize(store: QueueStore) -> metrics.DepthSummary:
    """Every listed queue's counts, read a batch at a time into a bounded summary."""
    summary = metrics.DepthSummary()
    async for batch in store.scan_depths():
        for found in batch:
            summary.add(metrics.Depth(*found))
    return summary


@dataclass
class DepthReader:
    """The queue depths shown by one daemon's scrapes.

    A scrape starts a read of every queue's counts (or joins the one running: at most one
    runs at a time) and waits for it while its own deadline allows. A read of very many
    queues that outlasts that goes on in the background, outside the request, and the scrape
    shows the last complete read instead, with its age (``+Inf`` before the first one). A
    read that took over ``SLOW_READ`` seconds is shown again while it is younger than
    ``REUSE_FACTOR`` times its duration, so frequent scrapes of a broker with very many
    queues cost a bounded share of its time; a quicker read is never reused.
    """

    store: QueueStore
    _task: asyncio.Task[None] | None = None
    _last: tuple[float, metrics.DepthSummary] | None = None  # when it was read, and what
    _took: float = 0.0  # how long the last complete read took
    _up: bool = True

    async def families(self) -> list[Metric]:
        """The depth families of one scrape."""
        if not self._recent():
            task = self._task
            if task is None:  # a fresh context: no request's deadline bounds the read
                task = self._task = asyncio.create_task(self._read(), context=Context())
            budget = max(0.0, deadline.remaining() - DEADLINE_MARGIN)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), budget)
            if task.done() and not self._up:
                return metrics.depth_families([], storage_up=False)
        if self._last is None:
            return await self._nothing_read()
        read_at, summary = self._last
        age = time.monotonic() - read_at
        return metrics.depth_families(summary.series(), True, summary.queues, age)

    async def _nothing_read(self) -> list[Metric]:
        """Before the first read is done: how many queues there are, no depths (age +Inf)."""
        try:
            count = await self.store.queue_count()
        except (StorageUnavailable, OutcomeUnknown, StorageError):
            return metrics.depth_families([], storage_up=False)
        return metrics.depth_families([], storage_up=True, total=count, age=math.inf)

    def _recent(self) -> bool:
        """Whether no read runs and the last one may be shown again."""
        if self._task is not None or self._last is None or not self._up:
            return False
        if self._took < SLOW_READ:
            return False
        return time.monotonic() - self._last[0] < REUSE_FACTOR * self._took

    async def _read(self) -> None:
        started = time.monotonic()
        try:
            summary = await _summarize(self.store)
            self._last, self._up = (time.monotonic(), summary), True
            self._took = time.monotonic() - started
        except (StorageUnavailable, OutcomeUnknown, StorageError):
            self._up = False
        except Exception:  # a bug: keep scraping the counters
            log.exception("reading the queue depths failed")
            self._up = False
        finally:
            self._task = None

    async def close(self, _app: web.Application | None = None) -> None:
        """Stop a read still running (the application is shutting down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


DEPTHS = web.AppKey("restmq_depths", DepthReader)


async def scrape(request: web.Request) -> web.Response:
    """``GET /metrics``: every worker's counters, and queue depths read from Redis now."""
    context = ctx(request)
    registry = CollectorRegistry()
    if context.metrics_dir is not None:
        MultiProcessCollector(registry, path=context.metrics_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(_Families(await request.app[DEPTHS].families()))
    # Rendering a few thousand series takes tens of ms, and the multiprocess collector reads
    # files: in a thread, so the event loop keeps answering meanwhile.
    body = await asyncio.to_thread(generate_latest, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
