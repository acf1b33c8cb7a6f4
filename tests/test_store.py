"""The queue store, straight on Redis/Valkey (SPEC §2, §3.2, §3.3, §3.5): no HTTP in between.

Every test runs on both backends, in its own key namespace, and ends with the keyspace check
(no value without a reference, no reference without a value).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from restmq.engine.store import QueueStore
from restmq.errors import BadRequest, InvalidKey, MessageGone
from tests.conftest import Backend
from tests.helpers.wait import async_wait_until

SHORT_TTL = 0.05


async def queue_keys(raw_redis: Redis, prefix: str, queue: str) -> list[str]:
    """Every key of the namespace that belongs to ``queue`` (its hash tag)."""
    return sorted(
        [key async for key in raw_redis.scan_iter(match=f"{prefix}{{{queue}}}*", count=1000)]
    )


async def redis_ms(raw_redis: Redis) -> int:
    seconds, micros = await raw_redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def wait_for_redis_clock(raw_redis: Redis, seconds: float) -> None:
    """Wait until the Redis clock has moved ``seconds`` past now (TTLs use that clock)."""
    target = await redis_ms(raw_redis) + int(seconds * 1000) + 2

    async def passed() -> bool:
        return await redis_ms(raw_redis) > target

    await async_wait_until(passed, 5, "the Redis clock to pass the TTL")


async def test_messages_come_out_in_the_order_they_went_in(store: QueueStore) -> None:
    keys = [(await store.add("fifo", [f"m{i}"]))[0] for i in range(1, 6)]

    taken = [(await store.take("fifo"))[0] for _ in range(5)]

    assert keys == [f"fifo:{i}" for i in range(1, 6)]
    assert [(m.key, m.value, m.count) for m in taken] == [
        (f"fifo:{i}", f"m{i}", 0) for i in range(1, 6)
    ]
    assert await store.take("fifo") == []


async def test_take_with_a_count_returns_the_oldest_first(store: QueueStore) -> None:
    await store.add("many", ["a", "b", "c"])

    taken = await store.take("many", 2)

    assert [m.value for m in taken] == ["a", "b"]
    assert [m.value for m in await store.take("many", 5)] == ["c"]


async def test_a_batch_add_numbers_the_keys_in_the_order_given(store: QueueStore) -> None:
    await store.add("batch", ["first"])

    keys = await store.add("batch", ["a", "b", "c"])

    assert keys == ["batch:2", "batch:3", "batch:4"]
    assert [m.key for m in await store.take("batch", 10)] == ["batch:1", *keys]


@pytest.mark.parametrize("value", ["007", "1e3", "true", "null", "[1]", '{"a": 1}', "", "é ✓ 😀"])
async def test_a_value_comes_back_as_the_exact_string_sent(store: QueueStore, value: str) -> None:
    await store.add("strings", [value])

    (taken,) = await store.take("strings")

    assert taken.value == value
    assert isinstance(taken.value, str)


async def test_a_soft_get_leaves_the_message_and_counts_1_2_3(store: QueueStore) -> None:
    await store.add("soft", ["v", "w"])

    gets = [await store.get("soft") for _ in range(3)]

    assert [(m.key, m.value, m.count) for m in gets if m] == [
        ("soft:1", "v", 1),
        ("soft:1", "v", 2),
        ("soft:1", "v", 3),
    ]
    assert await store.length("soft") == 2
    (taken,) = await store.take("soft")
    assert (taken.key, taken.count) == ("soft:1", 3)


async def test_a_soft_get_on_an_empty_queue_returns_none(store: QueueStore) -> None:
    assert await store.get("nothing") is None


async def test_delete_by_key_removes_a_waiting_message(store: QueueStore) -> None:
    await store.add("del", ["a", "b", "c"])

    assert await store.delete("del", "del:2") is True
    assert await store.delete("del", "del:2") is False
    assert await store.delete("del", "del:99") is False

    assert [m.value for m in await store.take("del", 10)] == ["a", "c"]


async def test_delete_removes_a_message_that_was_soft_read(store: QueueStore) -> None:
    await store.add("delref", ["a"])
    await store.get("delref")

    assert await store.delete("delref", "delref:1") is True
    assert await store.get("delref") is None


@pytest.mark.parametrize(
    "key", ["other:1", "del:x", "del:", "del:-1", "del", "del:1:2", "del:\uff11"]
)
async def test_delete_with_a_key_that_is_not_the_queues_is_invalid(
    store: QueueStore, key: str
) -> None:
    await store.add("del", ["a"])

    with pytest.raises(InvalidKey):
        await store.delete("del", key)

    assert await store.length("del") == 1
    await store.take("del")


async def test_length_counts_the_waiting_messages(store: QueueStore) -> None:
    assert await store.length("len") == 0
    await store.add("len", ["a", "b", "c"])
    await store.take("len")
    await store.get("len")

    assert await store.length("len") == 2
    stats = await store.stats("len")
    assert (stats.name, stats.len, stats.leased, stats.delayed) == ("len", 2, 0, 0)


async def test_queues_lists_every_queue_by_name(store: QueueStore) -> None:
    assert await store.queues() == []
    for name in ["b", "a", "ü", "with space"]:
        await store.add(name, ["x"])

    assert await store.queues() == ["a", "b", "with space", "ü"]


async def test_purge_removes_every_key_of_the_queue_but_its_counter(
    store: QueueStore, backend: Backend, raw_redis: Redis
) -> None:
    await store.add("gone", ["a", "b"])
    await store.add("gone", ["c"], ttl=60)
    await store.get("gone")
    await store.set_policy("gone", "roundrobin")
    await store.set_status("gone", "stopped")
    await store.add("kept", ["k"])
    assert await queue_keys(raw_redis, backend.prefix, "gone")

    assert await store.purge("gone") == (True, 3)

    assert await queue_keys(raw_redis, backend.prefix, "gone") == [
        store.keys.queue_key("gone", "seq")
    ]
    assert not await raw_redis.sismember(store.keys.registry, "gone")
    assert await raw_redis.zscore(store.keys.timers, "gone") is None
    assert await store.queues() == ["kept"]
    assert await store.length("kept") == 1
    await store.take("kept")


async def test_purging_a_queue_that_does_not_exist_says_status_0(store: QueueStore) -> None:
    assert await store.purge("never") == (False, 0)


async def test_purging_twice_reports_the_second_as_absent(store: QueueStore) -> None:
    await store.add("twice", ["a"])

    assert await store.purge("twice") == (True, 1)
    assert await store.purge("twice") == (False, 0)


async def test_a_purged_queue_keeps_counting_its_keys_and_starts_with_defaults(
    store: QueueStore,
) -> None:
    await store.add("again", ["a", "b"])
    await store.set_policy("again", "roundrobin")
    await store.purge("again")

    assert await store.add("again", ["c"]) == ["again:3"]
    assert await store.policy("again") == "broadcast"
    assert await store.queues() == ["again"]
    await store.take("again")


async def test_a_late_del_or_ack_of_a_key_from_before_a_purge_hits_nothing(
    store: QueueStore,
) -> None:
    await store.add("late", ["old-1", "old-2"])
    (lease,) = await store.reserve("late", 1, 60)
    await store.purge("late")
    assert await store.add("late", ["new"]) == ["late:3"]

    with pytest.raises(MessageGone):
        await store.ack("late", lease.key, lease.receipt)
    assert await store.delete("late", "late:2") is False
    assert await store.delete("late", "late:1") is False

    assert [(m.key, m.value) for m in await store.take("late", 5)] == [("late:3", "new")]


async def test_a_purge_takes_its_unused_dead_letter_queue_with_it(
    store: QueueStore, backend: Backend, raw_redis: Redis
) -> None:
    await store.set_max_deliveries("pd", 2)
    await store.add("pd", ["a"])
    assert await store.queues() == ["pd", "pd:dead"]

    assert await store.purge("pd") == (True, 1)

    assert await store.queues() == []
    assert await queue_keys(raw_redis, backend.prefix, "pd") == [
        store.keys.queue_key("pd", "seq")
    ]


async def test_a_purge_leaves_a_dead_letter_queue_that_holds_messages(
    store: QueueStore,
) -> None:
    await store.set_max_deliveries("pk", 1)
    await store.add("pk", ["poison", "fine"])
    (lease,) = await store.reserve("pk", 1, 60)
    assert await store.nack("pk", lease.key, lease.receipt) == "dead"

    assert await store.purge("pk") == (True, 1)

    assert await store.queues() == ["pk:dead"]
    assert [(m.key, m.value) for m in await store.take("pk:dead")] == [("pk:dead:1", "poison")]
    assert await store.add("pk", ["next"]) == ["pk:3"]
    await store.take("pk")


async def test_a_purged_dead_letter_queue_of_a_queue_with_max_deliveries_stays_listed(
    store: QueueStore,
) -> None:
    await store.set_max_deliveries("pl", 1)
    await store.add("pl", ["poison"])
    (lease,) = await store.reserve("pl", 1, 60)
    await store.nack("pl", lease.key, lease.receipt)

    assert await store.purge("pl:dead") == (True, 1)

    assert await store.queues() == ["pl", "pl:dead"]  # dead letters may come at any time
    await store.add("pl", ["again"])
    (lease,) = await store.reserve("pl", 1, 60)
    assert await store.nack("pl", lease.key, lease.receipt) == "dead"
    assert [m.key for m in await store.take("pl:dead")] == ["pl:dead:2"]


async def test_a_message_that_fails_in_a_dead_letter_queue_stays_there(
    store: QueueStore, backend: Backend, raw_redis: Redis
) -> None:
    await store.set_max_deliveries("t", 1)
    await store.add("t", ["poison"])
    (lease,) = await store.reserve("t", 1, 60)
    assert await store.nack("t", lease.key, lease.receipt) == "dead"

    for delivery in (2, 3):
        (dead,) = await store.reserve("t:dead", 1, 60)
        assert (dead.key, dead.deliveries) == ("t:dead:1", delivery)
        assert await store.nack("t:dead", dead.key, dead.receipt) == "requeued"

    assert await store.queues() == ["t", "t:dead"]
    assert await queue_keys(raw_redis, backend.prefix, "t:dead") == []  # no {t:dead} keys
    (dead,) = await store.take("t:dead")
    assert (dead.key, dead.value) == ("t:dead:1", "poison")


async def test_an_expired_lease_in_a_dead_letter_queue_comes_back_to_it(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.set_max_deliveries("e", 1)
    await store.add("e", ["poison"])
    (lease,) = await store.reserve("e", 1, 60)
    await store.nack("e", lease.key, lease.receipt)
    await store.reserve("e:dead", 1, SHORT_TTL)
    await wait_for_redis_clock(raw_redis, SHORT_TTL)

    (dead,) = await store.reserve("e:dead", 1, 60)  # the expired lease is requeued first

    assert (dead.key, dead.deliveries) == ("e:dead:1", 3)
    assert await store.queues() == ["e", "e:dead"]
    await store.ack("e:dead", dead.key, dead.receipt)


async def test_a_max_deliveries_left_on_a_dead_letter_queue_is_ignored(
    store: QueueStore, raw_redis: Redis
) -> None:
    # Set before dead-letter queues were terminal (the route refuses it now).
    await raw_redis.hset(store.keys.queue_key("o:dead", "meta"), "max_deliveries", 1)
    await store.set_max_deliveries("o", 1)
    await store.add("o", ["poison"])
    (lease,) = await store.reserve("o", 1, 60)
    assert await store.nack("o", lease.key, lease.receipt) == "dead"

    (dead,) = await store.reserve("o:dead", 1, 60)
    assert await store.nack("o:dead", dead.key, dead.receipt) == "requeued"
    await store.reserve("o:dead", 1, SHORT_TTL)
    await wait_for_redis_clock(raw_redis, SHORT_TTL)

    (dead,) = await store.reserve("o:dead", 1, 60)
    assert (dead.key, dead.deliveries) == ("o:dead:1", 4)
    assert await store.queues() == ["o", "o:dead"]
    await store.ack("o:dead", dead.key, dead.receipt)


async def test_max_deliveries_cannot_be_set_on_a_dead_letter_queue(store: QueueStore) -> None:
    with pytest.raises(BadRequest):
        await store.set_max_deliveries("m:dead", 2)

    await store.set_max_deliveries("m:dead", 0)  # clearing is harmless
    assert "m:dead:dead" not in await store.queues()


async def test_policy_and_status_have_defaults_and_can_be_set(store: QueueStore) -> None:
    assert await store.policy("ps") == "broadcast"
    assert await store.status("ps") == "started"

    await store.set_policy("ps", "roundrobin")
    await store.set_status("ps", "stopped")

    assert await store.policy("ps") == "roundrobin"
    assert await store.status("ps") == "stopped"
    stats = await store.stats("ps")
    assert (stats.policy, stats.status) == ("roundrobin", "stopped")
    assert "ps" in await store.queues()

    await store.set_policy("ps", "broadcast")
    await store.set_status("ps", "started")
    assert (await store.policy("ps"), await store.status("ps")) == ("broadcast", "started")


async def test_a_stopped_queue_stays_stopped_when_a_message_arrives(store: QueueStore) -> None:
    await store.set_status("paused", "stopped")

    await store.add("paused", ["a"])

    assert await store.status("paused") == "stopped"
    await store.take("paused")


async def test_peek_shows_the_newest_first_and_leaves_them(store: QueueStore) -> None:
    await store.add("peek", [f"v{i}" for i in range(1, 13)])
    await store.get("peek")

    peeked = await store.peek("peek", 10)

    assert [m.value for m in peeked] == [f"v{i}" for i in range(12, 2, -1)]
    assert [m.key for m in peeked][:2] == ["peek:12", "peek:11"]
    assert await store.length("peek") == 12
    assert (await store.take("peek"))[0].count == 1
    await store.take("peek", 20)


async def test_an_expired_message_is_never_returned_and_stops_counting(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("ttl", ["short"], ttl=SHORT_TTL)
    await store.add("ttl", ["stays"])
    await store.add("ttl", ["long"], ttl=60)
    assert await store.length("ttl") == 3

    await wait_for_redis_clock(raw_redis, SHORT_TTL)

    assert await store.length("ttl") == 2
    assert [m.value for m in await store.peek("ttl", 10)] == ["long", "stays"]
    soft = await store.get("ttl")
    assert soft is not None and soft.value == "stays"
    assert [m.value for m in await store.take("ttl", 10)] == ["stays", "long"]
    assert await store.delete("ttl", "ttl:1") is False


async def test_an_expired_message_is_not_taken_even_without_a_sweep_first(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("ttl2", ["short"], ttl=SHORT_TTL)
    await store.add("ttl2", ["stays"])

    await wait_for_redis_clock(raw_redis, SHORT_TTL)

    taken = await store.take("ttl2", 5)
    assert [(m.key, m.value) for m in taken] == [("ttl2:2", "stays")]
    assert all(m.value is not None for m in taken)


async def test_no_expired_message_is_returned_when_more_than_a_sweep_expire_at_once(
    store: QueueStore, raw_redis: Redis
) -> None:
    await store.add("ttlmany", [f"e{i}" for i in range(150)], ttl=SHORT_TTL)
    await store.add("ttlmany", ["stays"])

    await wait_for_redis_clock(raw_redis, SHORT_TTL)

    try:
        assert [m.value for m in await store.take("ttlmany", 1)] == ["stays"]
    finally:
        await store.purge("ttlmany")


async def test_a_batch_of_5000_values_is_added_whole(store: QueueStore) -> None:
    keys = await store.add("bigbatch", [str(i) for i in range(5000)])

    assert keys[-1] == "bigbatch:5000"
    assert await store.purge("bigbatch") == (True, 5000)
