"""The store's side of ``Idempotency-Key`` (SPEC §3.8), straight on Redis/Valkey: a key is
remembered for the dedup window, in the queue's own slot, and then forgotten."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from restmq.engine.connection import open_storage, prepare
from restmq.engine.store import QueueStore
from restmq.errors import IdempotencyConflict
from tests.conftest import Backend
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until

WINDOW = 0.3


@pytest.fixture
async def store(backend: Backend, raw_redis: Redis) -> AsyncIterator[QueueStore]:
    storage = open_storage(backend.url, backend.prefix, 4, idempotency_window=WINDOW)
    await prepare(storage)
    yield storage.store
    await storage.close()
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_a_key_is_remembered_in_the_queue_slot_and_forgotten_after_the_window(
    store: QueueStore, raw_redis: Redis, backend: Backend
) -> None:
    assert await store.add("q", ["v"], idempotency_key="k") == ["q:1"]
    assert await store.add("q", ["v"], idempotency_key="k") == ["q:1"]
    remembered = [key async for key in raw_redis.scan_iter(match=f"{backend.prefix}*idem:*")]
    assert len(remembered) == 1 and "{q}" in remembered[0]

    async def forgotten() -> bool:
        return not await raw_redis.exists(remembered[0])

    await async_wait_until(forgotten, 5, "the idempotency key expires")
    assert await store.add("q", ["v"], idempotency_key="k") == ["q:2"]


async def test_a_batch_replays_all_its_keys_and_a_different_batch_conflicts(
    store: QueueStore,
) -> None:
    assert await store.add("b", ["x", "y"], idempotency_key="b") == ["b:1", "b:2"]
    assert await store.add("b", ["x", "y"], idempotency_key="b") == ["b:1", "b:2"]
    with pytest.raises(IdempotencyConflict):
        await store.add("b", ["y", "x"], idempotency_key="b")
    with pytest.raises(IdempotencyConflict):
        await store.add("b", ["x", "y"], delay=1, idempotency_key="b")
    assert (await store.stats("b")).len == 2


async def test_a_replay_registers_nothing_and_counts_nothing(
    store: QueueStore, raw_redis: Redis, backend: Backend
) -> None:
    await store.add("r", ["v"], idempotency_key="r")
    await store.purge("r")
    assert await store.add("r", ["v"], idempotency_key="r") == ["r:1"]  # the first answer
    assert "r" not in await store.queues()
