"""A daemon killed with SIGKILL mid-stream loses no roundrobin message (SPEC §3.4, §8)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import aiohttp
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.streams import start_reader
from tests.helpers.wait import async_wait_until

FAST = ("--presence-timeout", "2", "--stream-lease", "2", "--stream-credits", "16")
CREDITS = 16
TOTAL = 2000


async def _queue_keys(session: aiohttp.ClientSession, url: str, queue: str) -> list[str]:
    """Drain what is still waiting, by polling takes."""
    keys = []
    while True:
        async with session.get(f"{url}/q/{queue}") as response:
            if response.status == 204:
                return keys
            keys.append((await response.json())["key"])


async def test_killing_a_daemon_mid_stream_loses_no_roundrobin_message(
    broker_factory: Callable[..., Broker], raw_redis: Redis, backend: Backend
) -> None:
    victim, survivor = broker_factory(*FAST), broker_factory(*FAST)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{survivor.url}/p/flow", data={"policy": "roundrobin"}) as r:
            assert r.status == 200
        doomed = [start_reader(session, victim.url, "comet", "flow") for _ in range(2)]
        alive = [start_reader(session, survivor.url, kind, "flow") for kind in ("comet", "ws")]
        sent: list[str] = []

        async def produce() -> None:
            for i in range(TOTAL):
                async with session.post(f"{survivor.url}/q/flow", data={"value": f"f{i}"}) as r:
                    sent.append((await r.text()).strip())

        producer = asyncio.create_task(produce())
        await async_wait_until(
            lambda: _count(doomed) >= 100, 30, "the victim's consumers are receiving"
        )
        victim.kill()
        await producer
        for reader in doomed:
            await asyncio.wait_for(reader.closed.wait(), 5)

        async def everything_accounted() -> bool:
            received = {k for r in doomed + alive for k in r.keys}
            return received >= set(sent)

        # Leases of the dead daemon expire (2 s) and its consumers vanish (2 s); the
        # requeued messages then reach the survivor's consumers.
        await async_wait_until(everything_accounted, 40, "all messages received")
        counts = Counter(k for r in doomed + alive for k in r.keys)
        duplicates = [k for k, n in counts.items() if n > 1]
        assert set(counts) == set(sent)
        # Only what was in flight to the victim at the kill may arrive twice.
        assert len(duplicates) <= 2 * CREDITS, duplicates
        for reader in alive:
            await reader.stop()
        assert await _queue_keys(session, survivor.url, "flow") == []
    await assert_no_orphans(raw_redis, backend.prefix)


def _count(readers: list) -> int:  # type: ignore[type-arg]
    return sum(len(r.received) for r in readers)
