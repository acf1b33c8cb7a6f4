"""Idle queues leave the lists (issue 9): a queue that holds nothing — no message in any state,
no consumer, no long poller, nothing set — is forgotten after ``queue_idle_time``, but for its
id counter (keys are never reused). Straight on Redis/Valkey, through the store's idle scan.

The idle time is measured on the Redis clock: a test waits for that clock to pass it, never
sleeps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from restmq.engine.store import IDLE_SCAN_EVERY_MS, QueueStore
from restmq.engine.streams import DeliveryTuning, StreamStore
from tests.conftest import Backend
from tests.test_store import queue_keys, redis_ms, wait_for_redis_clock

IDLE_MS = 50
LONG_MS = 60_000


async def _idle_for(store: QueueStore, raw_redis: Redis, idle_ms: int = IDLE_MS) -> int:
    """Two scans with the idle time passed in between: the first marks the unused queues, the
    second forgets those still unused. Returns how many the second forgot."""
    await store.scan_idle(idle_ms)
    await wait_for_redis_clock(raw_redis, idle_ms / 1000)
    return await store.scan_idle(idle_ms)


async def _listed(store: QueueStore) -> list[str]:
    return await store.queues()


async def test_an_empty_queue_with_nothing_set_is_forgotten_but_its_counter_kept(
    store: QueueStore, backend: Backend, raw_redis: Redis
) -> None:
    await store.add("gone", ["a", "b"])
    await store.take("gone", 2)
    await store.add("kept", ["k"])

    assert await _idle_for(store, raw_redis) == 1

    assert await _listed(store) == ["kept"]
    assert await queue_keys(raw_redis, backend.prefix, "gone") == [
        store.keys.queue_key("gone", "seq")
    ]
    assert await store.add("gone", ["c"]) == ["gone:3"]  # keys keep counting
    assert await _listed(store) == ["gone", "kept"]
    await store.take("gone")
    await store.take("kept")


async def test_a_queue_is_forgotten_only_after_the_idle_time(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("young", ["a"])
    await store.take("young")

    assert await store.scan_idle(LONG_MS) == 0
    await wait_for_redis_clock(raw_redis, IDLE_MS / 1000)
    assert await store.scan_idle(LONG_MS) == 0

    assert await _listed(store) == ["young"]


async def test_messages_that_came_and_went_between_two_looks_restart_the_wait(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("busy", ["a"])
    await store.take("busy")
    await store.scan_idle(IDLE_MS)  # marked idle
    await store.add("busy", ["b"])
    await store.take("busy")  # empty again, but its counter moved
    await wait_for_redis_clock(raw_redis, IDLE_MS / 1000)

    assert await store.scan_idle(IDLE_MS) == 0
    assert await _listed(store) == ["busy"]

    await wait_for_redis_clock(raw_redis, IDLE_MS / 1000)
    assert await store.scan_idle(IDLE_MS) == 1
    assert await _listed(store) == []


async def _waiting(store: QueueStore) -> None:
    await store.add("q", ["w"])


async def _delayed(store: QueueStore) -> None:
    await store.add("q", ["d"], delay=600)


async def _leased(store: QueueStore) -> None:
    await store.add("q", ["l"])
    await store.reserve("q", 1, 600)


async def _dead(store: QueueStore) -> None:
    await store.set_max_deliveries("q", 1)
    await store.add("q", ["x"])
    (lease,) = await store.reserve("q", 1, 600)
    await store.nack("q", lease.key, lease.receipt)
    await store.set_max_deliveries("q", 0)


async def _consumer(store: QueueStore) -> None:
    await store.add("q", ["c"])
    await store.take("q")
    tuning = DeliveryTuning(credits=8, lease_ms=30_000, presence_ms=LONG_MS, history_size=8,
                            history_age_ms=LONG_MS)
    await StreamStore(store, tuning).join("q", "daemon/1", await _now(store))


async def _poller(store: QueueStore) -> None:
    await store.add("q", ["p"])
    await store.take("q")
    await store.mark_poller("q", "daemon", await _now(store) + LONG_MS)


async def _stopped(store: QueueStore) -> None:
    await store.set_status("q", "stopped")


async def _roundrobin(store: QueueStore) -> None:
    await store.set_policy("q", "roundrobin")


async def _max_deliveries(store: QueueStore) -> None:
    await store.set_max_deliveries("q", 3)


async def _now(store: QueueStore) -> int:
    seconds, micros = await store._p.call("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


KEEPERS: dict[str, Callable[[QueueStore], Awaitable[None]]] = {
    "a waiting message": _waiting,
    "a delayed message": _delayed,
    "a leased message": _leased,
    "a dead letter": _dead,
    "a streaming consumer": _consumer,
    "a long poller": _poller,
    "the stopped status": _stopped,
    "the roundrobin policy": _roundrobin,
    "max_deliveries": _max_deliveries,
}


@pytest.mark.parametrize("keeper", KEEPERS, ids=list(KEEPERS))
async def test_a_queue_with_something_in_it_or_set_stays_listed(
    store: QueueStore, raw_redis: Redis, keeper: str
) -> None:
    await KEEPERS[keeper](store)
    before = await _listed(store)
    assert "q" in before

    assert await _idle_for(store, raw_redis) == 0

    assert await _listed(store) == before
    await store.purge("q")
    await store.purge("q:dead")


async def test_an_expired_poller_does_not_keep_a_queue(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("q", ["p"])
    await store.take("q")
    await store.mark_poller("q", "gone-daemon", await _now(store) - 1)

    assert await _idle_for(store, raw_redis) == 1
    assert await _listed(store) == []


async def test_a_dead_letter_queue_stays_while_its_queue_has_max_deliveries(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.set_max_deliveries("q", 2)
    assert await _listed(store) == ["q", "q:dead"]

    assert await _idle_for(store, raw_redis) == 0
    assert await _listed(store) == ["q", "q:dead"]

    await store.set_max_deliveries("q", 0)
    assert await _idle_for(store, raw_redis) == 2
    assert await _listed(store) == []


async def test_a_message_added_while_the_queue_is_forgotten_lists_it_again(
    store: QueueStore, raw_redis: Redis
) -> None:
    # The race of the idle clean-up: the idle script has forgotten the queue (its `listed`
    # mark too), an add comes in and lists it, then the clean-up's SREM drops it: the re-check
    # after the SREM must list it again.
    await store.add("race", ["a"])
    await store.take("race")
    await store.scan_idle(IDLE_MS)
    await wait_for_redis_clock(raw_redis, IDLE_MS / 1000)
    assert await store._idle_check("race", IDLE_MS)

    assert await store.add("race", ["b"]) == ["race:2"]
    await store._unlist("race")

    assert await _listed(store) == ["race"]
    assert [m.value for m in await store.take("race")] == ["b"]


async def test_the_sweeper_runs_the_idle_scan_at_most_every_interval(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("q", ["a"])
    await store.take("q")
    now = await redis_ms(raw_redis)
    await store.sweep_due(now, idle_ms=IDLE_MS)  # marks it
    await wait_for_redis_clock(raw_redis, IDLE_MS / 1000)

    await store.sweep_due(now + 1, idle_ms=IDLE_MS)  # too soon for another scan step
    assert await _listed(store) == ["q"]

    await store.sweep_due(now + IDLE_SCAN_EVERY_MS, idle_ms=IDLE_MS)
    assert await _listed(store) == []
