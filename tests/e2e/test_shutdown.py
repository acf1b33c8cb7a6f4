"""SIGTERM with requests waiting (issue 9; SPEC §1, docs/operations.md), on a real broker.

Every long poll — ``GET /q?wait``, ``POST /q/<queue>/reserve`` with ``wait``, the JSON
protocol's ``take`` and ``reserve`` with ``wait`` — is answered at once with its route's empty
answer; every stream (comet, SSE, WebSocket) is ended cleanly; the process exits 0 well
within ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker, make_broker
from tests.helpers.streams import start_reader
from tests.helpers.wait import async_wait_until

SHUTDOWN_TIMEOUT = 5.0
ANSWERED_WITHIN = 2.0  # seconds from SIGTERM to every long poll's answer


async def _answer(request: Any) -> tuple[int, bytes, float]:
    async with request as response:
        return response.status, await response.read(), time.monotonic()


async def _ws_close_code(session: aiohttp.ClientSession, url: str) -> int | None:
    async with session.ws_connect(url) as ws:
        async for _ in ws:
            pass
        return ws.close_code


async def _polls_waiting(raw_redis: Redis, backend: Backend, queues: list[str]) -> None:
    keys = Keys(backend.prefix)

    async def all_marked() -> bool:
        marked = [await raw_redis.hlen(keys.queue_key(q, "pollers")) for q in queues]
        return all(marked)

    await async_wait_until(all_marked, 10, "every long poll is waiting")


async def _ready(session: aiohttp.ClientSession, broker: Broker) -> None:
    """Wait until the broker's pub/sub link is up (``/healthz``), not only its HTTP side."""

    async def healthy() -> bool:
        async with session.get(f"{broker.url}/healthz") as response:
            return response.status == 200

    await async_wait_until(healthy, 10, "the broker is healthy")


async def _consumers(session: aiohttp.ClientSession, broker: Broker, queue: str) -> int:
    async with session.get(f"{broker.url}/stats/{queue}") as response:
        return int((await response.json())["consumers"])


async def test_sigterm_answers_every_long_poll_at_once_ends_streams_and_exits_0_in_time(
    tmp_path: Path, backend: Backend, raw_redis: Redis
) -> None:
    broker = make_broker(
        tmp_path, backend.url, backend.prefix, ["--shutdown-timeout", str(SHUTDOWN_TIMEOUT)]
    ).start()
    url = broker.url
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, broker)
            polls: dict[str, Awaitable[tuple[int, bytes, float]]] = {
                "GET /q": session.get(f"{url}/q/w1?wait=60"),
                "POST reserve": session.post(f"{url}/q/w2/reserve", data={"wait": "60"}),
                "take": session.post(f"{url}/queue", json={"cmd": "take", "queue": "w3",
                                                            "wait": 60}),
                "reserve": session.post(f"{url}/queue", json={"cmd": "reserve", "queue": "w4",
                                                               "wait": 60}),
                "take count": session.post(f"{url}/queue", json={"cmd": "take", "queue": "w5",
                                                                  "wait": 60, "count": 5}),
            }
            waiting = {name: asyncio.create_task(_answer(r)) for name, r in polls.items()}
            readers = [start_reader(session, url, t, "st") for t in ("comet", "sse")]
            ws = asyncio.create_task(_ws_close_code(session, f"{url}/ws/st"))
            await _polls_waiting(raw_redis, backend, ["w1", "w2", "w3", "w4", "w5"])

            async def streaming() -> bool:
                return await _consumers(session, broker, "st") == 3

            await async_wait_until(streaming, 10, "the three streams joined")

            assert broker.proc is not None
            signalled = time.monotonic()
            broker.proc.send_signal(signal.SIGTERM)
            answers = {name: await asyncio.wait_for(t, 10) for name, t in waiting.items()}
            for reader in readers:
                await asyncio.wait_for(reader.closed.wait(), 10)
            ws_code = await asyncio.wait_for(ws, 10)
        code = await asyncio.to_thread(broker.proc.wait, SHUTDOWN_TIMEOUT + 5)
        exited = time.monotonic() - signalled
    finally:
        broker.kill()

    assert {name: answer[:2] for name, answer in answers.items()} == {
        "GET /q": (204, b""),
        "POST reserve": (204, b""),
        "take": (200, b'{"error": "empty queue"}\r\n'),
        "reserve": (200, b'{"error": "empty queue"}\r\n'),
        "take count": (200, b'{"queue": "w5", "messages": []}\r\n'),
    }
    assert max(at for _, _, at in answers.values()) - signalled < ANSWERED_WITHIN
    assert [reader.error for reader in readers] == [None, None]  # ended, not cut
    assert ws_code == aiohttp.WSCloseCode.GOING_AWAY
    assert code == 0
    assert exited < SHUTDOWN_TIMEOUT
