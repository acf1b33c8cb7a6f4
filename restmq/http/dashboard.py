"""The dashboard's live feed: ``GET /events/stats``, Server-Sent Events of the ``/stats/`` JSON.

How this works. One ``StatsFeed`` per daemon reads every queue's stats while at least one
dashboard is connected, and only then: every ``INTERVAL`` seconds, or four times as long as
the last read took when that is longer (a broker with very many queues is not read back to
back). When the JSON differs from the previous read, every connected dashboard is woken and
sent it as one ``stats`` event; a dashboard that connects gets the latest at once. So N open
dashboards cost one read per interval, not N. When Redis does not answer, an ``unavailable``
event is sent instead (once, until it changes). Idle connections get the SSE heartbeat comment
every ``heartbeat`` seconds; on shutdown every feed connection is ended.

The route is not ``/stats/stream``: that path already means the stats of a queue named
``stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from restmq.errors import StorageError, StorageUnavailable
from restmq.http.context import CTX, Context
from restmq.http.params import read_params
from restmq.http.render import dumps
from restmq.http.streams import STREAM_HEADERS
from restmq.protocol.framing import SSE_HEARTBEAT
from restmq.types import stats_json

log = logging.getLogger("restmq.http")
INTERVAL = 0.5
SLOW_READ_FACTOR = 4
STALL_TIMEOUT = 10.0
RETRY = b"retry: 2000\n\n"  # EventSource reconnects after 2 s
UNAVAILABLE = b'event: unavailable\ndata: {"error": "storage unavailable"}\n\n'
Read = Callable[[], Awaitable[bytes]]


def stats_event(body: str) -> bytes:
    """One ``stats`` event; compact JSON never holds a raw newline, so one data line."""
    return f"event: stats\ndata: {body}\n\n".encode()


class Subscription:
    """One connected dashboard: woken when the feed has something new for it."""

    def __init__(self, feed: StatsFeed) -> None:
        self._feed = feed
        self.changed = asyncio.Event()

    async def next(self, heartbeat: float) -> bytes | None:
        """The latest event, a heartbeat after ``heartbeat`` idle seconds (0: never), None
        when the feed is closed."""
        try:
            await asyncio.wait_for(self.changed.wait(), heartbeat or None)
        except TimeoutError:
            return SSE_HEARTBEAT
        self.changed.clear()
        return None if self._feed.closed else self._feed.latest


class StatsFeed:
    """One periodic stats read per daemon, shared by every connected dashboard."""

    def __init__(self, read: Read, interval: float = INTERVAL) -> None:
        self._read = read
        self._interval = interval
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.latest: bytes | None = None
        self.closed = False

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        if self.latest is not None:
            subscription.changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
            if not self._subscribers:
                self._stop()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.latest = None

    async def close(self, _app: web.Application | None = None) -> None:
        """End every subscription (the application is shutting down)."""
        self.closed = True
        for subscription in self._subscribers:
            subscription.changed.set()
        self._stop()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self._refresh()
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(self._interval, elapsed * SLOW_READ_FACTOR))

    async def _refresh(self) -> None:
        try:
            event = await self._read()
        except (StorageUnavailable, StorageError):
            event = UNAVAILABLE
        except Exception:  # keep the feed alive; the next read may succeed
            log.exception("dashboard stats read failed")
            return
        if event != self.latest:
            self.latest = event
            for subscription in self._subscribers:
                subscription.changed.set()


FEED = web.AppKey("restmq_stats_feed", StatsFeed)


async def read_stats(context: Context) -> bytes:
    """The ``/stats/`` JSON of every queue, as one ``stats`` event."""
    names = await context.store.queues()
    found = await asyncio.gather(*(context.store.stats(name) for name in names))
    queues = {stats.name: stats_json(stats) for stats in found}
    return stats_event(dumps({"queues": queues, "redis": context.storage, "count": len(queues)}))


def install(app: web.Application) -> None:
    """Give ``app`` its stats feed; it ends its connections when the app shuts down."""
    feed = StatsFeed(lambda: read_stats(app[CTX]))
    app[FEED] = feed
    app.on_shutdown.append(feed.close)


async def stats_events(request: web.Request) -> web.StreamResponse:
    """``GET /events/stats``: the ``/stats/`` JSON each time it changes, as SSE."""
    await read_params(request)
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    heartbeat = request.app[CTX].settings.heartbeat
    with contextlib.suppress(ConnectionError, TimeoutError):
        await response.write(RETRY)
        async with request.app[FEED].subscribe() as subscription:
            while (event := await subscription.next(heartbeat)) is not None:
                await asyncio.wait_for(response.write(event), STALL_TIMEOUT)
    return response
