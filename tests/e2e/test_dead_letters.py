"""Dead letters (SPEC §4, issue 4 item 3): with ``max_deliveries`` set, a message nacked that
many times — or whose lease expired that many times — ends in ``<queue>:dead`` with its
delivery count, and nowhere else: not waiting, not delayed, not leased in its queue."""

from __future__ import annotations

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

MAX = 3


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One real broker per backend for the module; each test starts from an empty keyspace."""
    with serve_module(request, tmp_path_factory) as served:
        yield served


@pytest.fixture
def backend(served: Served) -> Backend:
    served.wipe()
    return served.backend


@pytest.fixture
def broker(served: Served, backend: Backend) -> Broker:
    return served.broker


async def _post(session: aiohttp.ClientSession, url: str, **form: Any) -> dict[str, Any]:
    async with session.post(url, data={k: str(v) for k, v in form.items()}) as response:
        assert response.status == 200, await response.text()
        found: dict[str, Any] = await response.json()
        return found


async def _add(session: aiohttp.ClientSession, url: str, queue: str, value: str) -> str:
    async with session.post(f"{url}/q/{queue}", data={"value": value}) as response:
        assert response.status == 200, await response.text()
        return (await response.text()).strip()


async def _stats(session: aiohttp.ClientSession, url: str, queue: str) -> dict[str, int]:
    async with session.get(f"{url}/stats/{queue}") as response:
        body = await response.json()
        return {name: body[name] for name in ("len", "leased", "delayed", "dead")}


async def _reserve(session: aiohttp.ClientSession, url: str, queue: str, **form: Any) -> Any:
    fields = {name: str(value) for name, value in form.items()}
    async with session.post(f"{url}/q/{queue}/reserve", data=fields) as response:
        if response.status == 204:
            return None
        assert response.status == 200, await response.text()
        return await response.json()


async def _placed_nowhere(raw_redis: Redis, keys: Keys, queue: str) -> None:
    """The queue's own keys hold no trace of any message: no id, value, lease or count."""
    for suffix in ("ready", "vals", "delayed", "leased", "leases", "deliv", "exp"):
        assert not await raw_redis.exists(keys.queue_key(queue, suffix)), suffix


async def _only_in_dead_queue(
    session: aiohttp.ClientSession, url: str, raw_redis: Redis, keys: Keys, value: str
) -> None:
    """The one message is in ``jobs:dead`` with MAX deliveries recorded, and nowhere else."""
    assert await _stats(session, url, "jobs") == {"len": 0, "leased": 0, "delayed": 0, "dead": 1}
    await _placed_nowhere(raw_redis, keys, "jobs")
    dead = "jobs:dead"
    assert await raw_redis.lrange(keys.queue_key(dead, "ready"), 0, -1) == ["1"]
    assert await raw_redis.hgetall(keys.queue_key(dead, "vals")) == {"1": value}
    assert await raw_redis.hgetall(keys.queue_key(dead, "deliv")) == {"1": str(MAX)}
    # Consuming the dead-letter queue with reserve shows the history: this is delivery MAX+1.
    lease = await _reserve(session, url, dead, timeout=60)
    assert (lease["key"], lease["value"], lease["deliveries"]) == ("jobs:dead:1", value, MAX + 1)
    assert (await _post(session, f"{url}/q/{dead}/ack", **lease))["acked"] is True
    assert await _reserve(session, url, "jobs") is None
    assert await _reserve(session, url, dead) is None


async def test_a_message_nacked_max_deliveries_times_ends_in_the_dead_letter_queue(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    keys, url = Keys(backend.prefix), broker.url
    async with aiohttp.ClientSession() as session:
        await _post(session, f"{url}/p/jobs", max_deliveries=MAX)
        await _add(session, url, "jobs", "poison")
        outcomes = []
        for delivery in range(1, MAX + 1):
            lease = await _reserve(session, url, "jobs", timeout=60)
            assert (lease["key"], lease["deliveries"]) == ("jobs:1", delivery)
            nacked = await _post(session, f"{url}/q/jobs/nack", **lease)
            outcomes.append(nacked["outcome"])

        assert outcomes == ["requeued"] * (MAX - 1) + ["dead"]
        async with session.get(f"{url}/q/", headers={"Accept": "application/json"}) as r:
            assert set((await r.json())["queues"]) == {"jobs", "jobs:dead"}
        await _only_in_dead_queue(session, url, raw_redis, keys, "poison")
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_message_whose_lease_expired_max_deliveries_times_is_dead_lettered(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    keys, url = Keys(backend.prefix), broker.url
    async with aiohttp.ClientSession() as session:
        await _post(session, f"{url}/p/jobs", max_deliveries=MAX)
        await _add(session, url, "jobs", "slow")
        for delivery in range(1, MAX + 1):
            lease = await _reserve(session, url, "jobs", timeout=0.2, wait=10)
            assert lease is not None and lease["deliveries"] == delivery
        # The third lease expires too; the sweeper moves the message to the dead-letter queue.

        async def buried() -> bool:
            return (await _stats(session, url, "jobs"))["dead"] == 1

        await async_wait_until(buried, 10, "the message is dead-lettered")
        await _only_in_dead_queue(session, url, raw_redis, keys, "slow")
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_dead_letter_can_be_taken_like_any_message_and_others_keep_flowing(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    url = broker.url
    async with aiohttp.ClientSession() as session:
        await _post(session, f"{url}/p/jobs", max_deliveries=1)
        for value in ("bad", "good"):
            await _add(session, url, "jobs", value)
        bad = await _reserve(session, url, "jobs", timeout=60)
        good = await _reserve(session, url, "jobs", timeout=60)

        assert (await _post(session, f"{url}/q/jobs/nack", **bad))["outcome"] == "dead"
        assert (await _post(session, f"{url}/q/jobs/ack", **good))["acked"] is True
        async with session.get(f"{url}/q/jobs:dead") as response:
            assert await response.json() == {"key": "jobs:dead:1", "value": "bad", "count": 0}
        assert await _stats(session, url, "jobs") == {
            "len": 0,
            "leased": 0,
            "delayed": 0,
            "dead": 0,
        }
        async with session.get(f"{url}/q/jobs:dead") as response:
            assert response.status == 204
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_without_max_deliveries_a_message_is_redelivered_for_ever(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    url = broker.url
    async with aiohttp.ClientSession() as session:
        await _add(session, url, "jobs", "again")
        for delivery in range(1, 8):
            lease = await _reserve(session, url, "jobs", timeout=60)
            assert lease["deliveries"] == delivery
            assert (await _post(session, f"{url}/q/jobs/nack", **lease))["outcome"] == "requeued"
        assert (await _stats(session, url, "jobs"))["dead"] == 0
        async with session.get(f"{url}/q/jobs") as response:
            assert (await response.json())["value"] == "again"
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_dead_letter_queue_is_terminal(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    """Issue 9: a message that fails in ``jobs:dead`` stays there — requeued with its delivery
    count — and no ``jobs:dead:dead`` ever appears; max_deliveries on it is refused."""
    keys, url = Keys(backend.prefix), broker.url
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/p/jobs:dead", data={"max_deliveries": "1"}) as refused:
            assert refused.status == 400
            assert "terminal" in (await refused.json())["error"]
        await _post(session, f"{url}/p/jobs", max_deliveries=1)
        await _add(session, url, "jobs", "poison")
        lease = await _reserve(session, url, "jobs", timeout=60)
        assert (await _post(session, f"{url}/q/jobs/nack", **lease))["outcome"] == "dead"

        for delivery in (2, 3):
            dead = await _reserve(session, url, "jobs:dead", timeout=60)
            assert (dead["key"], dead["deliveries"]) == ("jobs:dead:1", delivery)
            nacked = await _post(session, f"{url}/q/jobs:dead/nack", **dead)
            assert nacked["outcome"] == "requeued"

        async with session.get(f"{url}/q/", headers={"Accept": "application/json"}) as r:
            assert (await r.json())["queues"] == ["jobs", "jobs:dead"]
        assert await raw_redis.lrange(keys.queue_key("jobs:dead", "ready"), 0, -1) == ["1"]
        assert await raw_redis.smembers(keys.registry) == {"jobs", "jobs:dead"}
        async with session.get(f"{url}/q/jobs:dead") as response:
            assert (await response.json())["key"] == "jobs:dead:1"
    await assert_no_orphans(raw_redis, backend.prefix)
