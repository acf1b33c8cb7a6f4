"""The asyncio AsyncClient against a real broker: every method, and the errors it raises."""

from __future__ import annotations

import asyncio

import pytest

from restmq.client import AsyncClient, Lease, Message, QueuePolicy
from restmq.errors import (
    BadRequest,
    ClientError,
    InvalidQueueName,
    MessageGone,
    NotLeased,
    StaleReceipt,
)
from tests.helpers.broker import free_port
from tests.helpers.wait import async_wait_until

AWKWARD = ["007", "", "é ✓", 'quote " and \\ backslash', "line\nbreak", "sep\u2028\x85x"]


async def test_add_take_and_get(aclient: AsyncClient, queue: str) -> None:
    assert await aclient.get(queue) is None
    first = await aclient.add(queue, "one")
    keys = await aclient.add(queue, AWKWARD)
    assert keys == [f"{queue}:{n}" for n in range(2, 2 + len(AWKWARD))]
    assert await aclient.get(queue) == Message(queue, first, "one", 1)
    assert await aclient.take(queue) == Message(queue, first, "one", 1)
    taken = await aclient.take(queue, count=100)
    assert [(m.key, m.value) for m in taken] == list(zip(keys, AWKWARD, strict=True))
    assert await aclient.take(queue) is None
    assert await aclient.take(queue, count=2) == []


async def test_take_with_wait_returns_a_message_added_meanwhile(
    aclient: AsyncClient, queue: str
) -> None:
    waiting = asyncio.create_task(aclient.take(queue, wait=10))
    await asyncio.sleep(0.3)
    await aclient.add(queue, "late")
    message = await waiting
    assert message is not None and message.value == "late"


async def test_delay_ttl_and_delete(aclient: AsyncClient, queue: str) -> None:
    await aclient.add(queue, "later", delay=1)
    assert await aclient.take(queue) is None
    assert (await aclient.stats(queue)).delayed == 1
    message = await aclient.take(queue, wait=10)
    assert message is not None and message.value == "later"
    key = await aclient.add(queue, "gone soon", ttl=1)

    async def expired() -> bool:
        return await aclient.get(queue) is None

    await async_wait_until(expired, 15, "the ttl message expired")
    assert await aclient.delete(queue, key) is False
    key = await aclient.add(queue, "v")
    assert await aclient.delete(queue, key) is True


async def test_reserve_ack_nack_and_extend(aclient: AsyncClient, queue: str) -> None:
    await aclient.add(queue, ["a", "b", "c"])
    lease = await aclient.reserve(queue, timeout=30)
    assert lease is not None and (lease.value, lease.deliveries) == ("a", 1)
    assert await aclient.extend(lease, 45) == 45.0
    assert await aclient.nack(lease) == "requeued"
    again = await aclient.reserve(queue)
    assert again is not None and again.deliveries == 2
    with pytest.raises(StaleReceipt):
        await aclient.ack(lease)
    await aclient.ack(again)
    with pytest.raises(MessageGone):
        await aclient.nack(again)
    leases = await aclient.reserve(queue, count=5)
    assert [r.value for r in leases] == ["b", "c"]
    assert await aclient.nack(leases[0], delay=30) == "delayed"
    await aclient.ack(Lease(queue, leases[1].key, leases[1].receipt))
    assert await aclient.reserve(queue, wait=0.2) is None
    assert await aclient.reserve(queue, count=3) == []


async def test_ack_many_and_nack_many(aclient: AsyncClient, queue: str) -> None:
    await aclient.add(queue, ["a", "b", "c"])
    leases = await aclient.reserve(queue, count=3)

    acked = await aclient.ack_many(leases[:2])
    nacked = await aclient.nack_many([leases[2], leases[0]])

    assert acked.acked == [leases[0].key, leases[1].key] and acked.failed == []
    assert nacked.nacked == {leases[2].key: "requeued"}
    assert [(f.key, f.error) for f in nacked.failed] == [
        (leases[0].key, f"no such message: {leases[0].key}")
    ]
    with pytest.raises(StaleReceipt, match="expired"):  # its lease ended with the nack
        await aclient.extend(leases[2])
    with pytest.raises(NotLeased):
        await aclient.ack(Lease(queue, (await aclient.add(queue, "d")), "r"))


async def test_policy_pause_resume_stats_queues_and_purge(
    aclient: AsyncClient, queue: str
) -> None:
    assert await aclient.policy(queue) == QueuePolicy(queue, "broadcast", None)
    assert await aclient.set_policy(queue, "roundrobin", 4) == QueuePolicy(queue, "roundrobin", 4)
    await aclient.add(queue, ["a", "b"])
    await aclient.pause(queue)
    stats = await aclient.stats(queue)
    assert (stats.len, stats.status, stats.policy) == (2, "stopped", "roundrobin")
    await aclient.resume(queue)
    assert (await aclient.stats())[queue].status == "started"
    assert queue in await aclient.queues()
    assert await aclient.purge(queue) == 2
    assert queue not in await aclient.queues()


async def test_errors_are_the_package_errors(aclient: AsyncClient, queue: str) -> None:
    with pytest.raises(InvalidQueueName):
        await aclient.add("a/b", "v")
    with pytest.raises(BadRequest):
        await aclient.take(queue, count=0)
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", timeout=2, retry=None) as nowhere:
        with pytest.raises(ClientError):
            await nowhere.queues()
