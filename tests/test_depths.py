"""The queue depths of ``/metrics`` at scale (issue 9): the bounded summary (pure), the
slot-batched read of every queue (real Redis/Valkey), and the reader that shows the previous
read when a new one outlasts the scrape's deadline."""

from __future__ import annotations

import pytest
from prometheus_client.metrics_core import Metric

from restmq import deadline
from restmq.engine.store import DEPTH_BATCH, QueueStore
from restmq.engine.streams import DeliveryTuning, StreamStore
from restmq.http.metrics import DEADLINE_MARGIN, DepthReader
from restmq.metrics import OTHER_QUEUE, Depth, DepthSummary
from tests.helpers.wait import async_wait_until


def _summary(top: int, depths: list[Depth]) -> list[Depth]:
    summary = DepthSummary(top)
    for depth in depths:
        summary.add(depth)
    assert summary.queues == len(depths)
    return summary.series()


@pytest.mark.parametrize(
    ("top", "depths", "series"),
    [
        (3, [], []),
        (
            3,
            [Depth("a", 1, 0, 0, 0, 0), Depth("b", 5, 1, 0, 0, 2)],
            [Depth("b", 5, 1, 0, 0, 2), Depth("a", 1, 0, 0, 0, 0)],
        ),
        (  # the two holding the most keep series; the others are summed
            2,
            [Depth("a", 1, 0, 0, 0, 1), Depth("b", 0, 0, 9, 0, 0), Depth("c", 0, 0, 0, 3, 0),
             Depth("d", 2, 0, 0, 0, 4)],
            [Depth("b", 0, 0, 9, 0, 0), Depth("c", 0, 0, 0, 3, 0),
             Depth(OTHER_QUEUE, 3, 0, 0, 0, 5)],
        ),
        (  # equal messages: more consumers first
            1,
            [Depth("x", 1, 0, 0, 0, 0), Depth("y", 1, 0, 0, 0, 3)],
            [Depth("y", 1, 0, 0, 0, 3), Depth(OTHER_QUEUE, 1, 0, 0, 0, 0)],
        ),
        (0, [Depth("x", 1, 2, 3, 4, 5)], [Depth(OTHER_QUEUE, 1, 2, 3, 4, 5)]),
    ],
)
def test_the_depth_summary_keeps_the_fullest_queues_and_sums_the_others(
    top: int, depths: list[Depth], series: list[Depth]
) -> None:
    assert _summary(top, depths) == series


async def _all_depths(store: QueueStore) -> dict[str, tuple[int, ...]]:
    found: dict[str, tuple[int, ...]] = {}
    async for batch in store.scan_depths():
        for name, *counts in batch:
            assert name not in found
            found[name] = tuple(counts)
    return found


async def test_scan_depths_reads_every_state_of_every_queue(store: QueueStore) -> None:
    await store.add("jobs", ["a", "b", "c"])
    await store.add("jobs", ["later"], delay=600)
    await store.reserve("jobs", 1, 600)
    await store.set_max_deliveries("jobs", 1)
    await store.add("other", ["x"])
    (lease,) = await store.reserve("other", 1, 600)
    await store.set_max_deliveries("other", 1)
    await store.nack("other", lease.key, lease.receipt)
    tuning = DeliveryTuning(credits=4, lease_ms=30_000, presence_ms=60_000, history_size=4,
                            history_age_ms=60_000)
    streams = StreamStore(store, tuning)
    await streams.join("other", "d/1", 0)  # its presence deadline has passed: not counted
    await streams.join("other", "d/2", 10**13)

    found = await _all_depths(store)

    # (waiting, leased, delayed, dead, consumers)
    assert found == {
        "jobs": (2, 1, 1, 0, 0),
        "jobs:dead": (0, 0, 0, 0, 0),
        "other": (0, 0, 0, 1, 1),
        "other:dead": (1, 0, 0, 0, 0),
    }
    for queue in ("jobs", "other"):
        await store.purge(queue)
    await store.purge("other:dead")


async def test_scan_depths_reads_many_queues_of_one_slot_in_several_batches(
    store: QueueStore,
) -> None:
    # Queues named {tag}... share the hash tag, hence the slot: more than one batch of them.
    names = [f"{{t}}:{i}" for i in range(DEPTH_BATCH * 2 + 3)]
    for name in names:
        await store.add(name, ["v"] * (len(name) % 3 + 1))

    found = await _all_depths(store)

    assert found == {name: (len(name) % 3 + 1, 0, 0, 0, 0) for name in names}
    for name in names:
        await store.purge(name)


async def test_a_scrape_whose_read_outlasts_its_deadline_shows_the_last_complete_read(
    store: QueueStore,
) -> None:
    await store.add("q", ["a", "b"])
    reader = DepthReader(store)

    with deadline.scope(DEADLINE_MARGIN):  # no time to wait for the read
        first = {f.name: f for f in await reader.families()}
    await async_wait_until(lambda: reader._task is None, 10, "the read to end")
    await store.add("q", ["c"])
    with deadline.scope(DEADLINE_MARGIN):  # the new read is not waited for: the last
        second = {f.name: f for f in await reader.families()}
    await async_wait_until(lambda: reader._task is None, 10, "the read to end")
    third = {f.name: f for f in await reader.families()}  # time enough: a fresh one

    def waiting(families: dict[str, Metric]) -> list[float]:
        samples = families["restmq_queue_messages"].samples
        return [s.value for s in samples if s.labels["state"] == "waiting"]

    assert waiting(first) == [] and first["restmq_queues"].samples[0].value == 1
    assert first["restmq_queue_depths_age_seconds"].samples[0].value == float("inf")
    assert waiting(second) == [2]
    assert waiting(third) == [3]
    await store.purge("q")
