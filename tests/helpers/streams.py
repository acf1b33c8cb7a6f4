"""Real streaming clients for tests: comet and SSE over aiohttp's client, WebSocket too.

Each reader runs in a task, records every message it gets as (key, value) and exposes
``wait_for(n)``; ``closed`` is set when the server ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Reader:
    name: str
    received: list[tuple[str, str]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float = 0.0
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def got(self, key: str, value: str) -> None:
        self.received.append((key, value))
        self._changed.set()

    def ended(self) -> None:
        self.closed_at = time.monotonic()
        self.closed.set()
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        async def reached() -> None:
            while len(self.received) < count:
                if self.closed.is_set():
                    raise AssertionError(f"{self.name} closed after {len(self.received)}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self.task

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.received]


def key_number(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


async def _comet(session: aiohttp.ClientSession, url: str, reader: Reader) -> None:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            text = line.decode().strip()
            if text:
                message = json.loads(text)
                reader.got(message["key"], message["value"])
    reader.ended()


async def _sse(session: aiohttp.ClientSession, url: str, reader: Reader) -> None:
    """A raw event-stream parser: fields up to a blank line make one event."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        event: dict[str, str] = {}
        async for line in response.content:
            text = line.decode().rstrip("\n").rstrip("\r")
            if text.startswith(":"):
                continue
            if text == "":
                if "data" in event:
                    message = json.loads(event["data"])
                    assert event.get("id") == message["key"]
                    reader.got(message["key"], message["value"])
                event = {}
                continue
            name, _, value = text.partition(":")
            event[name] = value[1:] if value.startswith(" ") else value
    reader.ended()


async def _ws(session: aiohttp.ClientSession, url: str, reader: Reader) -> None:
    async with session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
        async for frame in ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                message = json.loads(frame.data)
                if "key" in message and "value" in message:
                    reader.got(message["key"], message["value"])
    reader.ended()


TRANSPORTS: dict[str, tuple[str, Callable[..., Awaitable[None]]]] = {
    "comet": ("/c/", _comet),
    "sse": ("/sse/", _sse),
    "ws": ("/ws/", _ws),
}


def start_reader(
    session: aiohttp.ClientSession, base: str, transport: str, queue: str, name: str = ""
) -> Reader:
    path, run = TRANSPORTS[transport]
    url = base + path + queue
    reader = Reader(name or f"{transport}@{base}")

    async def guarded() -> None:
        try:
            await run(session, url, reader)
        except (aiohttp.ClientError, ConnectionError) as exc:
            reader.error = exc  # the server went away mid-stream
        finally:
            if not reader.closed.is_set():
                reader.ended()

    reader.task = asyncio.create_task(guarded())
    return reader


async def raw_comet_then_half_close(
    host: str, port: int, queue: str, read_before_close: int
) -> list[str]:
    """A socket-level comet consumer that reads some messages, then closes its sending side
    and keeps reading until the server closes: it sees every byte the server wrote."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /c/{queue} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    data = b""
    while data.count(b'"key"') < read_before_close:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    sock = writer.get_extra_info("socket")
    sock.shutdown(socket.SHUT_WR)
    while chunk := await reader.read(65536):
        data += chunk
    writer.close()
    return [line.split('"key": "')[1].split('"')[0] for line in data.decode().split("\r\n")
            if '"key": "' in line]
