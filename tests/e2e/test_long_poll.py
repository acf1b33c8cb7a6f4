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
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest
from redis.asyncio import Redis

from restmq.engine.connection import open_storage
from restmq.engine.scripts import ScriptName, load_scripts
from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker, make_broker
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


class HoldingProxy:
    """A TCP proxy between the broker and Redis that can hold what the broker sends (its
    commands) while letting Redis's answers and pub/sub messages through."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = urlparse(upstream_url)
        self._open = asyncio.Event()
        self._open.set()
        self.held = bytearray()  # what the broker sent while held
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._upstream.scheme == "unix":
            return await asyncio.open_unix_connection(self._upstream.path)
        return await asyncio.open_connection(self._upstream.hostname, self._upstream.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._connect()
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, holding=True)),
            asyncio.create_task(self._pump(up_reader, writer, holding=False)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, holding: bool
    ) -> None:
        while data := await reader.read(65536):
            if holding and not self._open.is_set():
                self.held += data
                await self._open.wait()
            writer.write(data)
            await writer.drain()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _message_state(raw_redis: Redis, prefix: str, queue: str, msg_id: str) -> Any:
    keys = Keys(prefix)
    return (
        await raw_redis.lrange(keys.queue_key(queue, "ready"), 0, -1),
        await raw_redis.hget(keys.queue_key(queue, "vals"), msg_id),
        await raw_redis.hget(keys.queue_key(queue, "refs"), msg_id),
        await raw_redis.hget(keys.queue_key(queue, "deliv"), msg_id),
        await raw_redis.zscore(keys.queue_key(queue, "exp"), msg_id),
    )


async def test_a_message_taken_for_a_long_poll_whose_client_left_goes_back_exactly_as_it_was(
    tmp_path: Path, backend: Backend, raw_redis: Redis
) -> None:
    """The client leaves while the broker's take for it is on its way to Redis: the message
    goes back with its key, value, TTL end, soft-get count and delivery count."""
    proxy = HoldingProxy(backend.url)
    port = await proxy.start()
    broker = make_broker(tmp_path, f"redis://127.0.0.1:{port}/0", backend.prefix)
    await asyncio.to_thread(broker.start)  # the proxy runs on this event loop meanwhile

    async def healthy() -> bool:  # its pub/sub link is up too, not only its HTTP side
        async with aiohttp.ClientSession() as session, session.get(f"{broker.url}/healthz") as r:
            return r.status == 200

    await async_wait_until(healthy, 10, "the broker is healthy")
    storage = open_storage(backend.url, backend.prefix, 4)
    try:
        store = storage.store
        (key,) = await store.add("pb", ["v"], ttl=120)
        await store.get("pb")
        await store.get("pb")
        (lease,) = await store.reserve("pb", 1, 60)  # leased: the queue looks empty
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
        writer.write(b"GET /q/pb?wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        await _waiting(raw_redis, backend, "pb")

        proxy.hold()
        await store.nack("pb", lease.key, lease.receipt)  # back in the queue: the broker wakes
        take = load_scripts()[ScriptName.TAKE].sha.encode()
        await async_wait_until(lambda: take in proxy.held, 10, "the broker's take is sent")
        before = await _message_state(raw_redis, backend.prefix, "pb", "1")
        writer.write_eof()  # the client leaves; the broker forgets its request ...
        assert await asyncio.wait_for(reader.read(), 10) == b""  # ... and closes its side
        proxy.release()  # ... then the take runs

        async def back() -> bool:
            return await _message_state(raw_redis, backend.prefix, "pb", "1") == before

        await async_wait_until(back, 10, "the message is back as it was")
        assert before[1:] == ("v", "2", "1", before[4]) and before[4]
        async with aiohttp.ClientSession() as session, session.get(f"{broker.url}/q/pb") as r:
            assert await r.json() == {"key": key, "value": "v", "count": 2}
        writer.close()
    finally:
        proxy.release()
        await asyncio.to_thread(broker.stop)
        await storage.close()
        await proxy.close()
    await assert_no_orphans(raw_redis, backend.prefix)

