"""The dashboard's live feed: ``GET /events/stats``, Server-Sent Events of the ``/stats/`` JSON.

How this works. The feed is paged like ``/stats/`` (``after``, ``limit``: one page of queues,
with ``count`` and ``next``; see ``restmq.http.listing``). One ``StatsFeed`` per daemon and
page reads that page's stats while at least one dashboard shows it, and only then: every
``INTERVAL`` seconds, or four times as long as the last read took when that is longer (a
broker with very many queues is not read back to back). When the JSON differs from the
previous read, every dashboard on that page is woken and sent it as one ``stats`` event; a
dashboard that connects gets the latest at once. So N open dashboards cost one read per
interval and page shown, not N; ``Feeds`` drops a page's feed when its last dashboard
leaves. When Redis does not answer, an ``unavailable`` event is sent instead (once, until it
changes). Idle connections get the SSE heartbeat comment every ``heartbeat`` seconds; on
shutdown every feed connection is ended.

The route is not ``/stats/stream``: that path already means the stats of a queue named
``stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from restmq.errors import OutcomeUnknown, StorageError, StorageUnavailable
from restmq.http import listing
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
        except (StorageUnavailable, OutcomeUnknown, StorageError):
            event = UNAVAILABLE
        except Exception:  # keep the feed alive; the next read may succeed
            log.exception("dashboard stats read failed")
            return
        if event != self.latest:
            self.latest = event
            for subscription in self._subscribers:
                subscription.changed.set()


@dataclass
class Feeds:
    """The feeds of one daemon, one per page shown by at least one dashboard."""

    context: Context
    interval: float = INTERVAL
    _feeds: dict[listing.PageRequest, StatsFeed] = field(default_factory=dict)
    _users: dict[listing.PageRequest, int] = field(default_factory=dict)
    closed: bool = False

    @contextlib.asynccontextmanager
    async def subscribe(self, page: listing.PageRequest) -> AsyncIterator[Subscription]:
        feed = self._feeds.get(page)
        if feed is None:
            feed = self._feeds[page] = StatsFeed(self._reader(page), self.interval)
        self._users[page] = self._users.get(page, 0) + 1
        try:
            async with feed.subscribe() as subscription:
                yield subscription
        finally:
            self._users[page] -= 1
            if not self._users[page]:
                del self._users[page], self._feeds[page]

    def _reader(self, page: listing.PageRequest) -> Read:
        return lambda: read_stats(self.context, page)

    async def close(self, _app: web.Application | None = None) -> None:
        """End every subscription of every page (the application is shutting down)."""
        self.closed = True
        for feed in list(self._feeds.values()):
            await feed.close()


FEED = web.AppKey("restmq_stats_feeds", Feeds)


async def read_stats(context: Context, wanted: listing.PageRequest) -> bytes:
    """The ``/stats/`` JSON of one page of queues, as one ``stats`` event."""
    page = await listing.read_page(context.store, wanted)
    found = await listing.read_each(page.names, context.store.stats)
    queues = {stats.name: stats_json(stats) for stats in found}
    return stats_event(dumps({"queues": queues, "redis": context.storage, **page.fields()}))


def install(app: web.Application) -> None:
    """Give ``app`` its stats feeds; they end their connections when the app shuts down."""
    feeds = Feeds(app[CTX])
    app[FEED] = feeds
    app.on_shutdown.append(feeds.close)


async def stats_events(request: web.Request) -> web.StreamResponse:
    """``GET /events/stats``: a page of the ``/stats/`` JSON each time it changes, as SSE."""
    page = listing.page_request(await read_params(request))
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    heartbeat = request.app[CTX].settings.heartbeat
    with contextlib.suppress(ConnectionError, TimeoutError):
        await response.write(RETRY)
        async with request.app[FEED].subscribe(page) as subscription:
            while (event := await subscription.next(heartbeat)) is not None:
                await asyncio.wait_for(response.write(event), STALL_TIMEOUT)
    return response
