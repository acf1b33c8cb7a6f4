"""Streaming consumers (SPEC §3.4): ``/c/<queue>`` comet, ``/sse/<queue>``, ``/ws/<queue>``.

Each route joins the daemon's delivery hub and runs a ``_Stream`` with its own framing.

Back-pressure and deadlines (SPEC §9): a consumer holds at most its credits (64 messages by
default) in its outbox. Each write to the client must finish within ``write_timeout``, and a
roundrobin delivery counts as delivered (its lease settled, its credit given back) only once
its bytes have left this machine (``restmq.http.wire``), which must happen within
``write_timeout`` too. A client that misses either deadline has stalled: its connection is
aborted (a reset: it sees the end at once, and no megabytes stay queued for it), and every
roundrobin message that was not sent to it goes back to the front of the queue. A stream that
ends for another reason (the client left, the queue was deleted, the daemon stops) is closed
in order, within the same deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from restmq.delivery.consumer import Consumer, Delivery
from restmq.delivery.hub import SHUTTING_DOWN
from restmq.delivery.inflight import InFlight
from restmq.errors import BadRequest, RestMQError
from restmq.http import commands
from restmq.http.access import check_command
from restmq.http.context import ctx
from restmq.http.params import read_params
from restmq.http.render import CALLBACK
from restmq.http.wire import Wire
from restmq.keys import parse_message_key
from restmq.protocol import framing
from restmq.protocol.names import check_queue

log = logging.getLogger("restmq.delivery")
WS_CLOSE_TIMEOUT = 2.0  # how long a closing handshake waits for the client's answer
RECHECK_FIRST = 0.005  # seconds before looking again whether in-flight bytes left ...
RECHECK_MAX = 0.25  # ... doubling while they do not (the kernel tells no one when they do)
Write = Callable[[Delivery], Awaitable[None]]
Step = Callable[[], Awaitable[None]]
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_GONE = (ConnectionError, RuntimeError)
T = TypeVar("T")


class _Stalled(Exception):
    """Raised when a delivery written to a client has not left this machine in time."""


async def _within(seconds: float, write: Awaitable[T]) -> T:
    async with asyncio.timeout(seconds):  # no task per write, unlike wait_for
        return await write


class _Stream:
    """The writer of one streaming consumer: deliveries out, heartbeats when idle, deadlines."""

    def __init__(
        self,
        request: web.Request,
        consumer: Consumer,
        write: Write,
        beat: Step | None = None,
        every: float | None = None,
    ) -> None:
        context = ctx(request)
        self._hub = context.hub
        self._consumer = consumer
        self._write = write
        self._beat = beat
        self._every = every if beat is not None else None
        self.deadline = context.settings.write_timeout
        self._wire = Wire(request.transport)
        self._inflight = InFlight()
        self._recheck = RECHECK_FIRST
        self._last_write = time.monotonic()

    async def serve(self, start: Step, close: Step) -> None:
        """``start`` the stream, write deliveries until the consumer closes, then ``close``
        it in order. The consumer is forgotten before the close, which may wait for the
        client. A connection that ends otherwise has handed over what it was sent (at most
        once, as any write)."""
        try:
            if await self._run(start):
                await self._end(close)
        finally:
            self._settled(self._inflight.drain())

    async def _run(self, start: Step) -> bool:
        """True when the consumer closed and the stream may end in order."""
        try:
            await start()
            await self._deliver_all()
            return True
        except (TimeoutError, _Stalled):
            self._abort()
        except _GONE:
            pass
        finally:
            await asyncio.shield(self._hub.leave(self._consumer))
        return False

    async def _end(self, close: Step) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                await close()
                await self._until_sent()
        except (TimeoutError, _Stalled):
            self._abort()
        except _GONE:
            pass

    async def _deliver_all(self) -> None:
        while True:
            delivery = await self._consumer.next(timeout=self._idle_timeout())
            self._confirm()
            if delivery is not None:
                await self._deliver(delivery)
            elif self._consumer.closed.is_set():
                return
            elif self._beat is not None and self._beat_due():
                await _within(self.deadline, self._beat())
                self._last_write = time.monotonic()

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await _within(self.deadline, self._write(delivery))
        except BaseException:
            self._hub.unwritten(self._consumer, delivery)
            raise
        self._last_write = time.monotonic()
        counts = self._wire.counts() if delivery.leased else None
        if counts is None:
            self._hub.written(self._consumer, delivery)
            return
        self._inflight.add(delivery, counts.handed, self._last_write)
        self._settled(self._inflight.sent(counts.sent))

    def _confirm(self) -> None:
        """Settle the in-flight deliveries that have left; raise _Stalled when the oldest
        one has been waiting longer than the write deadline."""
        if not len(self._inflight):
            return
        counts = self._wire.counts()
        if counts is None:  # the connection is gone: what it was given was handed over
            self._settled(self._inflight.drain())
            return
        sent = self._inflight.sent(counts.sent)
        self._settled(sent)
        self._recheck = RECHECK_FIRST if sent else min(2 * self._recheck, RECHECK_MAX)
        oldest = self._inflight.oldest()
        if oldest is not None and time.monotonic() - oldest > self.deadline:
            raise _Stalled

    async def _until_sent(self) -> None:
        while len(self._inflight):
            self._confirm()
            if len(self._inflight):
                await asyncio.sleep(self._recheck)

    def _idle_timeout(self) -> float | None:
        waits = [self._recheck] if len(self._inflight) else []
        if self._every is not None:
            waits.append(max(0.0, self._last_write + self._every - time.monotonic()))
        return min(waits) if waits else None

    def _beat_due(self) -> bool:
        return self._every is not None and time.monotonic() >= self._last_write + self._every

    def _settled(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            self._hub.written(self._consumer, delivery)

    def _abort(self) -> None:
        """The client stalled: settle what left, give back what did not, reset the
        connection (in this order, with no await between: the counts stay true)."""
        counts = self._wire.counts()
        if counts is not None:
            self._settled(self._inflight.sent(counts.sent))
        returned = self._inflight.drain()
        for delivery in returned:
            self._hub.unwritten(self._consumer, delivery)
        self._wire.abort()
        self._consumer.close("stalled")
        log.info(
            "aborted a stalled consumer of %r (no progress within the %.1f s write deadline); "
            "%d in-flight messages given back", self._consumer.queue, self.deadline, len(returned),
        )


def _stream_response(content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = content_type
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    return response


async def comet(request: web.Request) -> web.StreamResponse:
    """Chunked HTTP: one ``{"key", "value"}\\r\\n`` chunk per message (JSONP with callback)."""
    queue = check_queue(request.match_info["queue"])
    params = await read_params(request)
    every = params.seconds("heartbeat") or None
    callback = request.get(CALLBACK)
    consumer = await ctx(request).hub.join(queue)
    response = _stream_response("text/plain")

    async def write(d: Delivery) -> None:
        await response.write(framing.comet_chunk(d.key, d.value, callback))

    async def beat() -> None:
        await response.write(framing.COMET_HEARTBEAT)

    async def start() -> None:
        await response.prepare(request)

    await _Stream(request, consumer, write, beat, every).serve(start, response.write_eof)
    return response


def _last_event_id(request: web.Request, queue: str) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if not raw:
        return None
    msg_id = parse_message_key(queue, raw)
    if msg_id is None:
        raise BadRequest("Last-Event-ID must be a message key of this queue")
    return msg_id


async def sse(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events, replaying the history window after ``Last-Event-ID``."""
    queue = check_queue(request.match_info["queue"])
    await read_params(request)
    after = _last_event_id(request, queue)
    context = ctx(request)
    hub = context.hub
    consumer = await hub.join(queue)
    response = _stream_response("text/event-stream")
    replayed = 0

    async def write(d: Delivery) -> None:
        if d.leased or int(d.msg_id) > replayed:
            await response.write(framing.sse_event(d.key, d.value))

    async def beat() -> None:
        await response.write(framing.SSE_HEARTBEAT)

    stream = _Stream(request, consumer, write, beat, context.settings.heartbeat)

    async def start() -> None:
        nonlocal replayed
        await response.prepare(request)
        if after is not None:
            for msg_id, value in await hub.history(queue, after):
                event = framing.sse_event(f"{queue}:{msg_id}", value)
                await _within(stream.deadline, response.write(event))
                replayed = int(msg_id)

    await stream.serve(start, response.write_eof)
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    """WebSocket: messages as text frames; client commands run, anything else is echoed."""
    queue = check_queue(request.match_info["queue"])
    hub = ctx(request).hub
    ws = web.WebSocketResponse(heartbeat=ctx(request).settings.heartbeat, timeout=WS_CLOSE_TIMEOUT)
    if not ws.can_prepare(request).ok:
        raise BadRequest("expected a WebSocket upgrade request")
    consumer = await hub.join(queue)
    lock = asyncio.Lock()
    readers: list[asyncio.Task[None]] = []

    async def send(text: str) -> None:
        async with lock:
            await ws.send_str(text)

    async def write(d: Delivery) -> None:
        await send(framing.ws_text(d.key, d.value))

    async def start() -> None:
        await ws.prepare(request)
        readers.append(asyncio.create_task(_ws_reader(request, ws, consumer, send)))

    async def close() -> None:
        await _cancel(readers)
        going_away = consumer.close_reason == SHUTTING_DOWN
        await ws.close(code=WSCloseCode.GOING_AWAY if going_away else WSCloseCode.OK)

    try:
        await _Stream(request, consumer, write).serve(start, close)
    finally:
        await _cancel(readers)
    return ws


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _ws_reader(
    request: web.Request,
    ws: web.WebSocketResponse,
    consumer: Consumer,
    send: Callable[[str], Awaitable[None]],
) -> None:
    async for frame in ws:
        if frame.type == WSMsgType.TEXT:
            await send(await _ws_answer(request, frame.data))
        elif frame.type == WSMsgType.BINARY:
            await ws.send_bytes(frame.data)
    consumer.close("client closed")


async def _ws_answer(request: web.Request, text: str) -> str:
    """A JSON-protocol command is executed; any other text is echoed (as the original)."""
    try:
        command = commands.parse(json.loads(text))
    except (ValueError, RecursionError, BadRequest):
        return text
    try:
        await check_command(request, command)
        answer = await commands.execute(ctx(request), command)
    except RestMQError as exc:
        answer = {"error": exc.message}
    return json.dumps(answer, ensure_ascii=False)
