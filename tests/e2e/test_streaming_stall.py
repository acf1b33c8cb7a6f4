"""A streaming consumer that stops reading (issue 9; SPEC §3.4, §9), against a real broker.

The client connects (comet, SSE or WebSocket), then reads nothing while a roundrobin queue
fills. Within the write deadline the broker resets the connection — the client's socket leaves
ESTABLISHED without reading a byte, so nothing stays queued for it — and every message the
client did not get is still in the queue, taken by anyone afterwards: none is lost, none
comes twice.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until

WRITE_TIMEOUT = 1.0
BOUND = WRITE_TIMEOUT + 4.0  # the reset comes within this many seconds of the stall
MESSAGES = 300
VALUE = "x" * 1000
TCP_ESTABLISHED = 1
KEY = re.compile(rb'\{"key": "stall:(\d+)", "value": "x{1000}"\}')  # a whole message only
REQUESTS = {
    "comet": b"GET /c/stall HTTP/1.1\r\nHost: x\r\n\r\n",
    "sse": b"GET /sse/stall HTTP/1.1\r\nHost: x\r\n\r\n",
    "ws": b"GET /ws/stall HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def broker(
    broker_factory: Callable[..., Broker], session: aiohttp.ClientSession
) -> Broker:
    broker = broker_factory("--write-timeout", str(WRITE_TIMEOUT))

    async def healthy() -> bool:  # its pub/sub link is up too, not only its HTTP side
        async with session.get(f"{broker.url}/healthz") as response:
            return response.status == 200

    await async_wait_until(healthy, 10, "the broker is healthy")
    return broker


async def _stats(session: aiohttp.ClientSession, broker: Broker) -> dict[str, int]:
    async with session.get(f"{broker.url}/stats/stall") as response:
        assert response.status == 200
        body: dict[str, int] = await response.json()
        return body


def _tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _read_all(sock: socket.socket) -> bytes:
    """What the client can still read: its receive buffer, up to the reset (or EOF)."""
    data = b""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def _take_all(session: aiohttp.ClientSession, broker: Broker) -> list[str]:
    keys: list[str] = []
    while True:
        async with session.get(f"{broker.url}/q/stall?count=1000") as response:
            if response.status == 204:
                return keys
            keys += [m["key"] for m in (await response.json())["messages"]]


@pytest.mark.parametrize("transport", sorted(REQUESTS))
async def test_a_consumer_that_stops_reading_is_reset_and_what_it_did_not_get_stays_takeable(
    broker: Broker,
    session: aiohttp.ClientSession,
    raw_redis: Redis,
    backend: Backend,
    transport: str,
) -> None:
    async with session.post(f"{broker.url}/p/stall", data={"policy": "roundrobin"}) as r:
        assert r.status == 200
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: stalls fast
    client.connect(("127.0.0.1", broker.port))
    try:
        client.sendall(REQUESTS[transport])

        async def joined() -> bool:
            return (await _stats(session, broker))["consumers"] == 1

        await async_wait_until(joined, 10, "the consumer joined")
        values = {"values": [VALUE] * MESSAGES}
        async with session.post(f"{broker.url}/q/stall", json=values) as response:
            assert response.status == 200
        await async_wait_until(
            lambda: _tcp_state(client) != TCP_ESTABLISHED, BOUND, "the broker reset the stream"
        )
        received = [f"stall:{int(n)}" for n in KEY.findall(_read_all(client))]
    finally:
        client.close()

    async def settled() -> bool:
        stats = await _stats(session, broker)
        return stats["leased"] == 0 and stats["consumers"] == 0

    await async_wait_until(settled, 10, "the stalled consumer's leases returned")
    taken = await _take_all(session, broker)
    everything = [f"stall:{n}" for n in range(1, MESSAGES + 1)]
    assert sorted(received + taken) == sorted(everything)  # none lost, none twice
    assert len(received) < MESSAGES
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_consumer_that_keeps_reading_is_never_reset(
    broker: Broker, session: aiohttp.ClientSession, raw_redis: Redis, backend: Backend
) -> None:
    """The deadline is on a stalled client, not on a busy one: a consumer that reads all
    along gets every message of a burst far bigger than its window."""
    async with session.post(f"{broker.url}/p/stall", data={"policy": "roundrobin"}) as r:
        assert r.status == 200
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(REQUESTS["comet"])
    received: set[bytes] = set()
    data = b""

    async def read_all() -> None:
        nonlocal data
        while len(received) < 3 * MESSAGES:
            chunk = await reader.read(65536)
            assert chunk, "the broker closed a consumer that was reading"
            data += chunk
            received.update(KEY.findall(data[-200_000:]))

    async def joined() -> bool:
        return (await _stats(session, broker))["consumers"] == 1

    await async_wait_until(joined, 10, "the consumer joined")
    for _ in range(3):
        async with session.post(
            f"{broker.url}/q/stall", json={"values": [VALUE] * MESSAGES}
        ) as response:
            assert response.status == 200
    await asyncio.wait_for(read_all(), 30)
    writer.close()
    await writer.wait_closed()
    await assert_no_orphans(raw_redis, backend.prefix)
