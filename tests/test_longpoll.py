"""The long-poll waiters of one daemon (``restmq.delivery.longpoll``), without a server: the
subscription and the attempts are plain callables, so the cancellation races a disconnecting
client creates can be staged exactly; the put-back path also runs on a real store."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from restmq.delivery.longpoll import LongPolls
from restmq.engine.store import QueueStore
from restmq.keys import Keys
from restmq.types import Message
from tests.conftest import Backend
from tests.helpers.wait import async_wait_until


class Recorder:
    """acquire/release callables that count calls; acquire can be held open."""

    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def acquire(self, queue: str) -> None:
        self.acquired.append(queue)
        await self.hold.wait()

    async def release(self, queue: str) -> None:
        self.released.append(queue)


async def _nothing() -> list[str]:
    return []


async def _ignore(found: list[str]) -> None:
    raise AssertionError(f"nothing should be given back, got {found}")


async def test_a_request_cancelled_while_subscribing_leaves_no_waiter_behind() -> None:
    subs = Recorder()
    subs.hold.clear()  # the subscription is slow to be confirmed
    polls = LongPolls(subs.acquire, subs.release)

    request = asyncio.create_task(polls.wait("q", _nothing, _ignore, 10))
    while not subs.acquired:
        await asyncio.sleep(0)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)

    assert polls.queues() == []
    assert subs.released == ["q"]


async def test_a_request_cancelled_while_the_attempt_for_it_runs_gets_the_message_given_back() -> (
    None
):
    subs = Recorder()
    polls = LongPolls(subs.acquire, subs.release)
    attempts = 0
    proceed = asyncio.Event()
    given_back: list[list[str]] = []

    async def attempt() -> list[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return []  # the queue is empty when the request arrives
        await proceed.wait()  # a message came; the take is on its way
        return ["m"]

    async def give_back(found: list[str]) -> None:
        given_back.append(found)

    # The request's time runs out while the attempt is in progress, then it is cancelled.
    request = asyncio.create_task(polls.wait("q", attempt, give_back, 0.05))
    while not subs.acquired:
        await asyncio.sleep(0)
    polls.wake("q")
    while attempts < 2:
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # past the request's timeout: it now waits for the attempt
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    proceed.set()
    for _ in range(10):
        await asyncio.sleep(0)

    assert given_back == [["m"]]
    assert polls.queues() == []


# The put-back path on a real store: what a waiter that left is given back is exactly what
# was taken (issue 9 item 5).


async def _message_state(raw_redis: Redis, prefix: str, queue: str, msg_id: str) -> dict[str, Any]:
    """Everything Redis holds about one message, as the queue's keys say it."""
    keys = Keys(prefix)
    return {
        "ready": await raw_redis.lrange(keys.queue_key(queue, "ready"), 0, -1),
        "value": await raw_redis.hget(keys.queue_key(queue, "vals"), msg_id),
        "refs": await raw_redis.hget(keys.queue_key(queue, "refs"), msg_id),
        "deliveries": await raw_redis.hget(keys.queue_key(queue, "deliv"), msg_id),
        "expiry": await raw_redis.zscore(keys.queue_key(queue, "exp"), msg_id),
    }


async def test_a_message_taken_for_a_request_that_left_goes_back_exactly_as_it_was(
    store: QueueStore, raw_redis: Redis, backend: Backend
) -> None:
    # A message with a TTL, soft-got twice and reserved then nacked once, behind an older one.
    await store.add("exact", ["first"], ttl=60)
    (key,) = await store.add("exact", ["v"], ttl=60)
    await store.take("exact")
    await store.get("exact")
    await store.get("exact")
    (lease,) = await store.reserve("exact", 1, 30)
    await store.nack("exact", lease.key, lease.receipt)
    msg_id = key.rsplit(":", 1)[1]
    before = await _message_state(raw_redis, backend.prefix, "exact", msg_id)
    assert before["refs"] == "2" and before["deliveries"] == "1" and before["expiry"]

    subs = Recorder()
    polls = LongPolls(subs.acquire, subs.release)
    taking, proceed, returned = asyncio.Event(), asyncio.Event(), asyncio.Event()
    attempts = 0

    async def attempt() -> list[Message]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return []  # the request found the queue empty and waits
        taking.set()
        await proceed.wait()  # the take is on its way when the client leaves
        return await store.take("exact")

    async def give_back(found: list[Message]) -> None:
        await store.put_back("exact", found)
        returned.set()

    request = asyncio.create_task(polls.wait("exact", attempt, give_back, 10))
    await async_wait_until(lambda: bool(subs.acquired), 5, "the request waits")
    polls.wake("exact")
    await asyncio.wait_for(taking.wait(), 5)
    request.cancel()  # the client disconnected
    await asyncio.gather(request, return_exceptions=True)
    proceed.set()
    await asyncio.wait_for(returned.wait(), 5)

    assert await _message_state(raw_redis, backend.prefix, "exact", msg_id) == before
    again = await store.get("exact")
    assert again is not None and (again.key, again.value, again.count) == (key, "v", 3)
    (lease,) = await store.reserve("exact", 1, 30)
    assert (lease.key, lease.deliveries) == (key, 2)
    await store.ack("exact", lease.key, lease.receipt)


async def test_a_message_whose_ttl_ended_while_it_was_out_is_not_put_back(
    store: QueueStore, raw_redis: Redis, backend: Backend
) -> None:
    await store.add("gone", ["short"], ttl=2)
    taken = await store.take("gone")
    assert [m.value for m in taken] == ["short"] and taken[0].expires_ms > 0

    async def redis_past_expiry() -> bool:
        seconds, micros = await raw_redis.time()
        return int(seconds) * 1000 + int(micros) // 1000 > taken[0].expires_ms

    await async_wait_until(redis_past_expiry, 10, "the TTL to end")
    await store.put_back("gone", taken)

    assert await store.take("gone") == []
