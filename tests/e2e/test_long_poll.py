"""Long polling (SPEC §4, issue 4 item 5): ``GET /q/<queue>?wait=<s>`` and ``reserve`` with
``wait`` hold the request until a message arrives — woken through Redis, within milliseconds —
or the time runs out (204). A thousand concurrent long-pollers on one daemon share a thousand
messages: each message reaches exactly one of them, and none is lost.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until
from tests.http_support import BACKENDS, Served, serve_module

POLLERS = 1000


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One real broker per backend for the module; each test starts from an empty keyspace
    (a broker keeps no long-poll state once its requests are answered)."""
    with serve_module(request, tmp_path_factory) as served:
        yield served


@pytest.fixture
def backend(served: Served) -> Backend:
    served.wipe()
    return served.backend


@pytest.fixture
def broker(served: Served, backend: Backend) -> Broker:
    return served.broker


WAKE_LATENCY = 0.050  # seconds from the POST's answer to the waiting GET's answer


def _raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def _waiting(raw_redis: Redis, backend: Backend, queue: str) -> None:
    """Wait until the broker has marked itself as a long-poller of ``queue`` in Redis."""
    pollers = Keys(backend.prefix).queue_key(queue, "pollers")

    async def marked() -> bool:
        return bool(await raw_redis.hlen(pollers))

    await async_wait_until(marked, 10, f"a long poll waits on {queue}")


async def _timed(request: Any) -> tuple[int, Any, float]:
    """Run a request; (status, JSON body or None, time its answer was read)."""
    async with request as response:
        body = await response.json() if response.status == 200 else await response.read()
        return response.status, body, time.monotonic()


async def test_a_waiting_get_receives_a_message_posted_a_second_later_within_50_ms(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    async with aiohttp.ClientSession() as polling, aiohttp.ClientSession() as producing:
        started = time.monotonic()
        poll = asyncio.create_task(_timed(polling.get(f"{broker.url}/q/lp?wait=10")))
        await _waiting(raw_redis, backend, "lp")
        await asyncio.sleep(max(0.0, started + 1.0 - time.monotonic()))  # the scenario: 1 s later
        async with producing.post(f"{broker.url}/q/lp", data={"value": "hello"}) as response:
            key = (await response.text()).strip()
            posted = time.monotonic()
        status, body, answered = await poll

    print(f"\nwoken {1000 * (answered - posted):.1f} ms after the POST's answer")
    assert (status, body) == (200, {"key": key, "value": "hello", "count": 0})
    assert answered - started >= 1.0
    assert answered - posted < WAKE_LATENCY
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_long_poll_with_nothing_to_take_answers_204_when_its_time_runs_out(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        status, body, answered = await _timed(session.get(f"{broker.url}/q/none?wait=0.5"))
        reserve = await _timed(session.post(f"{broker.url}/q/none/reserve", data={"wait": "0.5"}))

    assert (status, body) == (204, b"")
    assert reserve[:2] == (204, b"")
    assert 0.5 <= answered - started < 3.0
    assert 0.5 <= reserve[2] - answered < 3.0
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_reserve_with_wait_leases_a_message_that_arrives_while_it_waits(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    url = broker.url
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as producing:
        rest = asyncio.create_task(
            _timed(session.post(f"{url}/q/rw/reserve", data={"wait": "10", "timeout": "60"}))
        )
        command = {"cmd": "reserve", "queue": "rw", "wait": 10, "timeout": 60}
        json = asyncio.create_task(_timed(session.post(f"{url}/queue", json=command)))
        await _waiting(raw_redis, backend, "rw")
        async with producing.post(f"{url}/q/rw", json={"values": ["one", "two"]}) as response:
            assert response.status == 200
            posted = time.monotonic()
        answers = [await rest, await json]

        leases = [body for _, body, _ in answers]
        assert {lease["value"] for lease in leases} == {"one", "two"}
        assert [lease["deliveries"] for lease in leases] == [1, 1]
        assert all(at - posted < 1.0 for _, _, at in answers)
        for lease in leases:
            fields = {"key": lease["key"], "receipt": lease["receipt"]}
            async with session.post(f"{url}/q/rw/ack", data=fields) as response:
                assert response.status == 200
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_long_poll_that_went_away_takes_nothing(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    async with aiohttp.ClientSession() as gone:
        poll = asyncio.create_task(gone.get(f"{broker.url}/q/away?wait=10"))
        await _waiting(raw_redis, backend, "away")
        poll.cancel()
    async with aiohttp.ClientSession() as session:
        await async_wait_until(
            _not_waiting(raw_redis, backend, "away"), 10, "the broker forgot the long poll"
        )
        async with session.post(f"{broker.url}/q/away", data={"value": "kept"}) as response:
            assert response.status == 200
        async with session.get(f"{broker.url}/q/away") as response:
            assert (await response.json())["value"] == "kept"
    await assert_no_orphans(raw_redis, backend.prefix)


def _not_waiting(raw_redis: Redis, backend: Backend, queue: str) -> Any:
    pollers = Keys(backend.prefix).queue_key(queue, "pollers")

    async def check() -> bool:
        return not await raw_redis.hlen(pollers)

    return check


async def test_a_thousand_long_pollers_share_a_thousand_messages_one_each(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    _raise_open_files(4 * POLLERS)
    sent_requests = 0

    async def on_sent(*_: Any) -> None:
        nonlocal sent_requests
        sent_requests += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_sent)
    connector = aiohttp.TCPConnector(limit=POLLERS + 100)
    timeout = aiohttp.ClientTimeout(total=60)
    url = broker.url
    async with (
        aiohttp.ClientSession(
            connector=connector, timeout=timeout, trace_configs=[trace]
        ) as polling,
        aiohttp.ClientSession() as producing,
    ):
        polls = [
            asyncio.create_task(_timed(polling.get(f"{url}/q/crowd?wait=30")))
            for _ in range(POLLERS)
        ]
        await async_wait_until(lambda: sent_requests == POLLERS, 30, "every poller is waiting")
        await _waiting(raw_redis, backend, "crowd")
        keys: list[str] = []
        started = time.monotonic()

        async def produce(worker: int) -> None:
            for n in range(worker, POLLERS, 20):
                async with producing.post(f"{url}/q/crowd", data={"value": f"m{n}"}) as r:
                    assert r.status == 200
                    keys.append((await r.text()).strip())

        await asyncio.gather(*(produce(w) for w in range(20)))
        answers = await asyncio.gather(*polls)
        finished = time.monotonic()
        async with producing.get(f"{url}/q/crowd") as response:
            left_in_queue = response.status

    statuses = Counter(status for status, _, _ in answers)
    received = Counter(body["key"] for status, body, _ in answers if status == 200)
    print(
        f"\n{POLLERS} long polls, {len(keys)} messages: statuses {dict(statuses)}; "
        f"all answered {finished - started:.2f} s after the first POST"
    )
    assert statuses == {200: POLLERS}
    assert set(received) == set(keys) and len(keys) == POLLERS
    assert [k for k, n in received.items() if n > 1] == []
    assert left_in_queue == 204
    await assert_no_orphans(raw_redis, backend.prefix)
