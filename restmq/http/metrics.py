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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from restmq import metrics
from restmq.engine.store import QueueStore
from restmq.errors import StorageError, StorageUnavailable
from restmq.http.context import ctx
from restmq.http.routing import route_template
from restmq.types import QueueStats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ARRIVED = web.RequestKey("restmq_arrived", float)
ANSWERED = web.RequestKey("restmq_answered", bool)
# The classic text format, which every Prometheus reads (our names need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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


async def _all_stats(store: QueueStore) -> list[QueueStats]:
    names = await store.queues()
    return list(await asyncio.gather(*(store.stats(name) for name in names)))


async def _depths(store: QueueStore) -> list[Metric]:
    try:
        return metrics.depth_families(await _all_stats(store), storage_up=True)
    except (StorageUnavailable, StorageError):
        return metrics.depth_families([], storage_up=False)


async def scrape(request: web.Request) -> web.Response:
    """``GET /metrics``: every worker's counters, and queue depths read from Redis now."""
    context = ctx(request)
    registry = CollectorRegistry()
    if context.metrics_dir is not None:
        MultiProcessCollector(registry, path=context.metrics_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(_Families(await _depths(context.store)))
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE}
    )
