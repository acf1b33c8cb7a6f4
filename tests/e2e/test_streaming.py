"""Streaming delivery across three daemon processes sharing one Redis (SPEC §3.4, §8)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.streams import (
    Reader,
    key_number,
    raw_comet_then_half_close,
    start_reader,
)
from tests.helpers.wait import async_wait_until

FAST = ("--presence-timeout", "2", "--stream-lease", "2")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        yield s


@pytest.fixture
def daemons(broker_factory: Callable[..., Broker]) -> list[Broker]:
    return [broker_factory(*FAST) for _ in range(3)]


async def _stats(session: aiohttp.ClientSession, broker: Broker, queue: str) -> dict[str, int]:
    async with session.get(f"{broker.url}/stats/{queue}") as response:
        assert response.status == 200
        body: dict[str, int] = await response.json()
        return body


async def _wait_consumers(
    session: aiohttp.ClientSession, broker: Broker, queue: str, count: int
) -> None:
    async def seen() -> bool:
        return (await _stats(session, broker, queue))["consumers"] == count

    await async_wait_until(seen, 10, f"{count} consumers of {queue}")


async def _post_all(
    session: aiohttp.ClientSession, daemons: list[Broker], queue: str, values: list[str]
) -> list[str]:
    """POST every value, spread over the daemons, 20 at a time; returns the keys."""
    limit = asyncio.Semaphore(20)
    targets = itertools.cycle(daemons)

    async def post(value: str, broker: Broker) -> str:
        async with limit, session.post(f"{broker.url}/q/{queue}", data={"value": value}) as r:
            assert r.status == 200
            return (await r.text()).strip()

    return list(await asyncio.gather(*(post(v, next(targets)) for v in values)))


async def _set(
    session: aiohttp.ClientSession, broker: Broker, path: str, data: dict[str, str]
) -> None:
    async with session.post(broker.url + path, data=data) as response:
        assert response.status == 200, await response.text()


def _spread(
    session: aiohttp.ClientSession, daemons: list[Broker], queue: str
) -> list[Reader]:
    """Six consumers: two per daemon, mixing comet, WebSocket and SSE."""
    kinds = ["comet", "ws", "sse", "comet", "ws", "sse"]
    return [
        start_reader(session, daemons[i % 3].url, kind, queue, f"{kind}-{i}")
        for i, kind in enumerate(kinds)
    ]


async def test_broadcast_reaches_every_consumer_on_every_daemon_once_in_order(
    session: aiohttp.ClientSession, daemons: list[Broker], raw_redis: Redis, backend: Backend
) -> None:
    readers = _spread(session, daemons, "news")
    await _wait_consumers(session, daemons[0], "news", 6)
    keys = await _post_all(session, daemons, "news", [f"m{i}" for i in range(1000)])
    for reader in readers:
        await reader.wait_for(1000)
    for reader in readers:
        assert sorted(reader.keys, key=key_number) == reader.keys, f"{reader.name} out of order"
        assert set(reader.keys) == set(keys) and len(reader.keys) == 1000, reader.name
        await reader.stop()
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_roundrobin_gives_each_message_to_exactly_one_consumer_fairly(
    session: aiohttp.ClientSession, daemons: list[Broker], raw_redis: Redis, backend: Backend
) -> None:
    await _set(session, daemons[0], "/p/jobs", {"policy": "roundrobin"})
    readers = _spread(session, daemons, "jobs")
    await _wait_consumers(session, daemons[1], "jobs", 6)
    keys = await _post_all(session, daemons, "jobs", [f"j{i}" for i in range(3000)])

    async def all_in() -> bool:
        return sum(len(r.received) for r in readers) >= 3000

    await async_wait_until(all_in, 60, "3000 deliveries")
    counts = Counter(key for r in readers for key in r.keys)
    assert set(counts) == set(keys) and max(counts.values()) == 1
    mean = 3000 / 6
    for reader in readers:
        assert 0.5 * mean <= len(reader.received) <= 1.5 * mean, (reader.name, len(reader.received))
        await reader.stop()
    await async_wait_until(
        lambda: _leased_is(session, daemons[0], "jobs", 0), 10, "leases settled"
    )
    await assert_no_orphans(raw_redis, backend.prefix)


async def _leased_is(
    session: aiohttp.ClientSession, broker: Broker, queue: str, count: int
) -> bool:
    return (await _stats(session, broker, queue))["leased"] == count


async def test_a_stopped_queue_delivers_nothing_until_started_then_the_backlog_in_order(
    session: aiohttp.ClientSession, daemons: list[Broker]
) -> None:
    await _set(session, daemons[0], "/control/held", {"status": "stop"})
    readers = _spread(session, daemons, "held")
    await _wait_consumers(session, daemons[2], "held", 6)
    keys = await _post_all(session, daemons, "held", [f"h{i}" for i in range(100)])
    # An observation window: deliveries would take milliseconds, so a second of silence
    # while the backlog is waiting shows the pause holds.
    await asyncio.sleep(1.0)
    assert all(not r.received for r in readers)
    assert (await _stats(session, daemons[1], "held"))["len"] == 100
    await _set(session, daemons[1], "/control/held", {"status": "start"})
    for reader in readers:
        await reader.wait_for(100)
        assert reader.keys == sorted(keys, key=key_number)
        await reader.stop()


async def test_delete_closes_every_stream_on_every_daemon_within_a_second(
    session: aiohttp.ClientSession, daemons: list[Broker]
) -> None:
    readers = _spread(session, daemons, "doomed")
    await _wait_consumers(session, daemons[0], "doomed", 6)
    started = time.monotonic()
    async with session.delete(f"{daemons[1].url}/q/doomed") as response:
        assert response.status == 200
    for reader in readers:
        await asyncio.wait_for(reader.closed.wait(), 1.0)
        assert reader.closed_at - started < 1.0


async def test_a_consumer_that_disconnects_mid_stream_never_makes_a_message_vanish(
    session: aiohttp.ClientSession, daemons: list[Broker], raw_redis: Redis, backend: Backend
) -> None:
    await _set(session, daemons[0], "/p/work", {"policy": "roundrobin"})
    steady = [start_reader(session, d.url, "comet", "work") for d in daemons[1:]]
    leaver = asyncio.create_task(
        raw_comet_then_half_close("127.0.0.1", daemons[0].port, "work", read_before_close=20)
    )
    await _wait_consumers(session, daemons[0], "work", 3)
    keys = await _post_all(session, daemons, "work", [f"w{i}" for i in range(600)])
    left_with = await asyncio.wait_for(leaver, 30)

    async def all_accounted() -> bool:
        return sum(len(r.received) for r in steady) + len(left_with) >= len(keys)

    await async_wait_until(all_accounted, 30, "every message received once")
    received = Counter([*left_with, *(k for r in steady for k in r.keys)])
    assert set(received) == set(keys)
    assert max(received.values()) == 1
    for reader in steady:
        await reader.stop()
    await assert_no_orphans(raw_redis, backend.prefix)
