"""One request per route family, made by a real client, and what it does to its queue.

Each family's ``act`` sends the request a client of that family sends (a streaming consumer
reads its first message and hangs up) and returns an ``Answer``; ``delta`` says how the length
of the waiting queue changes when the request is allowed. ``Client`` is an aiohttp session
from a chosen loopback address with chosen headers, so one broker can see an allowed and a
refused client.
"""

from __future__ import annotations

import json
import xmlrpc.client
from base64 import b64encode
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from restmq.http.app import ROUTES
from restmq.http.routing import template_of

PRELOADED = 1
READ_TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Client:
    """Who asks: a source address on the loopback network and the headers it sends."""

    ip: str = "127.0.0.1"
    headers: Mapping[str, str] | None = None


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(text: str) -> dict[str, str]:
    return {"Cookie": text}


@asynccontextmanager
async def session_of(client: Client) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(local_addr=(client.ip, 0), force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, headers=dict(client.headers or {}), timeout=READ_TIMEOUT
    ) as session:
        yield session


async def _answer(response: aiohttp.ClientResponse) -> Answer:
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return Answer(response.status, body, response.headers)


async def produce(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.post(f"{base}/q/{queue}", data={"value": "produced"}) as response:
        return await _answer(response)


async def consume(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.get(f"{base}/q/{queue}") as response:
        return await _answer(response)


async def comet(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.get(f"{base}/c/{queue}") as response:
        if response.status != 200:
            return await _answer(response)
        async for line in response.content:
            if line.strip():
                return Answer(200, json.loads(line), response.headers)
    raise AssertionError("the comet stream ended without a message")


async def sse(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.get(f"{base}/sse/{queue}") as response:
        if response.status != 200:
            return await _answer(response)
        async for line in response.content:
            if line.startswith(b"data:"):
                return Answer(200, json.loads(line[5:]), response.headers)
    raise AssertionError("the event stream ended without a message")


UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def websocket(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    """The message of a real WebSocket; when the handshake is refused, the refusal's body."""
    try:
        async with session.ws_connect(f"{base}/ws/{queue}") as ws:
            frame = await ws.receive(timeout=15)
            return Answer(200, json.loads(frame.data), {})
    except aiohttp.WSServerHandshakeError:
        pass
    async with session.get(f"{base}/ws/{queue}", headers=UPGRADE) as response:
        return await _answer(response)


async def xmlrpc_set(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    body = xmlrpc.client.dumps((queue, "produced"), "set")
    headers = {"Content-Type": "text/xml"}
    async with session.post(f"{base}/xmlrpc", data=body, headers=headers) as response:
        if response.status != 200:
            return await _answer(response)
        (result,), _ = xmlrpc.client.loads(await response.read())
        return Answer(200, result, response.headers)


async def reserve(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.post(f"{base}/q/{queue}/reserve") as response:
        return await _answer(response)


async def purge(session: aiohttp.ClientSession, base: str, queue: str) -> Answer:
    async with session.delete(f"{base}/q/{queue}") as response:
        return await _answer(response)


Act = Callable[[aiohttp.ClientSession, str, str], Awaitable[Answer]]


@dataclass(frozen=True)
class Family:
    name: str
    act: Act
    delta: int  # change of the waiting queue's length when allowed
    route: tuple[str, str]  # (method, path) that must exist, else the family is skipped

    @property
    def present(self) -> bool:
        return any((r.method, template_of(r.path)) == self.route for r in ROUTES)


FAMILIES = [
    Family("rest producer", produce, +1, ("POST", "/q/{queue}")),
    Family("rest consumer", consume, -1, ("GET", "/q/{queue}")),
    Family("comet", comet, -1, ("GET", "/c/{queue}")),
    Family("websocket", websocket, -1, ("GET", "/ws/{queue}")),
    Family("sse", sse, -1, ("GET", "/sse/{queue}")),
    Family("xmlrpc", xmlrpc_set, +1, ("POST", "/xmlrpc")),
    Family("reserve", reserve, -1, ("POST", "/q/{queue}/reserve")),
    Family("admin", purge, -PRELOADED, ("DELETE", "/q/{queue}")),
]
COOKIE_FAMILIES = [f for f in FAMILIES if f.name in {"websocket", "sse"}]
