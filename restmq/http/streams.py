"""Streaming consumers (SPEC §3.4): ``/c/<queue>`` comet, ``/sse/<queue>``, ``/ws/<queue>``.

Each route joins the daemon's delivery hub and then runs the same writer loop with its own
framing. Back-pressure: a consumer holds at most its credits (64 messages by default) in
its outbox; a write that does not finish within ``STALL_TIMEOUT`` seconds closes the
consumer. Whatever a closed consumer was never sent of a roundrobin queue goes back to the
front of the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from restmq.delivery.consumer import Consumer, Delivery
from restmq.delivery.hub import Hub
from restmq.errors import BadRequest, RestMQError
from restmq.http import commands
from restmq.http.access import check_command
from restmq.http.context import ctx
from restmq.http.params import read_params
from restmq.http.render import CALLBACK
from restmq.keys import parse_message_key
from restmq.protocol import framing
from restmq.protocol.names import check_queue

STALL_TIMEOUT = 10.0
WS_CLOSE_TIMEOUT = 2.0  # how long a closing handshake waits for the client's answer
Write = Callable[[Delivery], Awaitable[None]]
Beat = Callable[[], Awaitable[None]]
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_GONE = (ConnectionError, TimeoutError, RuntimeError)


async def _serve(
    hub: Hub, consumer: Consumer, write: Write, beat: Beat | None, every: float | None
) -> None:
    """Write deliveries until the consumer closes; settle each one that was written."""
    while True:
        delivery = await consumer.next(timeout=every)
        if delivery is None:
            if consumer.closed.is_set():
                return
            if beat is not None:
                async with asyncio.timeout(STALL_TIMEOUT):
                    await beat()
            continue
        try:
            async with asyncio.timeout(STALL_TIMEOUT):  # no task per write, unlike wait_for
                await write(delivery)
        except BaseException:
            hub.unwritten(consumer, delivery)
            raise
        hub.written(consumer, delivery)


async def _run(hub: Hub, consumer: Consumer, serve: Awaitable[None]) -> None:
    try:
        await serve
    except _GONE:
        consumer.close("connection lost")
    finally:
        await asyncio.shield(hub.leave(consumer))


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
    hub = ctx(request).hub
    consumer = await hub.join(queue)
    response = _stream_response("text/plain")

    async def write(d: Delivery) -> None:
        await response.write(framing.comet_chunk(d.key, d.value, callback))

    async def beat() -> None:
        await response.write(framing.COMET_HEARTBEAT)

    async def serve() -> None:
        await response.prepare(request)
        await _serve(hub, consumer, write, beat, every)

    await _run(hub, consumer, serve())
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

    async def serve() -> None:
        nonlocal replayed
        await response.prepare(request)
        if after is not None:
            for msg_id, value in await hub.history(queue, after):
                await response.write(framing.sse_event(f"{queue}:{msg_id}", value))
                replayed = int(msg_id)
        await _serve(hub, consumer, write, beat, context.settings.heartbeat)

    await _run(hub, consumer, serve())
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

    async def send(text: str) -> None:
        async with lock:
            await ws.send_str(text)

    async def write(d: Delivery) -> None:
        await send(framing.ws_text(d.key, d.value))

    async def serve() -> None:
        await ws.prepare(request)
        reader = asyncio.create_task(_ws_reader(request, ws, consumer, send))
        try:
            await _serve(hub, consumer, write, None, None)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            # Forgotten before the closing handshake, which may wait for the client.
            await asyncio.shield(hub.leave(consumer))
            await ws.close()

    await _run(hub, consumer, serve())
    return ws


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
