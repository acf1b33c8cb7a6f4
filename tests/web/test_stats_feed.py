"""The dashboard's shared stats feed (``restmq.http.dashboard.StatsFeed``), with a fake read.

No Redis here: what is tested is the sharing, the change detection and the lifecycle; the
route itself runs against real brokers in ``test_dashboard.py``.
"""

from __future__ import annotations

import asyncio

from restmq.errors import StorageUnavailable
from restmq.http.dashboard import UNAVAILABLE, StatsFeed, stats_event
from restmq.protocol.framing import SSE_HEARTBEAT
from tests.helpers.wait import async_wait_until

INTERVAL = 0.01


class FakeStats:
    """A stats reader that counts its reads and answers whatever it is set to."""

    def __init__(self) -> None:
        self.reads = 0
        self.body = '{"queues": {}, "count": 0}'
        self.down = False

    async def read(self) -> bytes:
        self.reads += 1
        if self.down:
            raise StorageUnavailable("down")
        return stats_event(self.body)


async def test_a_subscriber_gets_the_stats_at_once() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, INTERVAL)
    async with feed.subscribe() as subscription:
        assert await subscription.next(5) == stats_event(fake.body)


async def test_many_subscribers_share_one_read_per_interval() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, 0.2)
    async with feed.subscribe() as first, feed.subscribe() as second, feed.subscribe() as third:
        got = await asyncio.gather(*(s.next(5) for s in (first, second, third)))
        assert got == [stats_event(fake.body)] * 3
        assert fake.reads == 1


async def test_only_a_change_is_sent_and_idle_subscribers_get_heartbeats() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, INTERVAL)
    async with feed.subscribe() as subscription:
        await subscription.next(5)
        await async_wait_until(lambda: fake.reads >= 5, 5, "several reads")
        assert await subscription.next(0.05) == SSE_HEARTBEAT  # nothing changed
        fake.body = '{"queues": {"q": {}}, "count": 1}'
        assert await subscription.next(5) == stats_event(fake.body)


async def test_storage_down_is_one_unavailable_event_then_the_stats_again() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, INTERVAL)
    async with feed.subscribe() as subscription:
        await subscription.next(5)
        fake.down = True
        assert await subscription.next(5) == UNAVAILABLE
        fake.down = False
        assert await subscription.next(5) == stats_event(fake.body)


async def test_reading_stops_when_the_last_subscriber_leaves() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, INTERVAL)
    async with feed.subscribe() as subscription:
        await subscription.next(5)
    reads = fake.reads
    await asyncio.sleep(INTERVAL * 10)  # a window in which a running feed would read again
    assert fake.reads == reads
    assert feed.latest is None


async def test_closing_the_feed_ends_every_subscription() -> None:
    fake = FakeStats()
    feed = StatsFeed(fake.read, INTERVAL)
    async with feed.subscribe() as first, feed.subscribe() as second:
        await first.next(5)
        await second.next(5)
        waiting = [asyncio.create_task(s.next(30)) for s in (first, second)]
        await feed.close()
        assert await asyncio.gather(*waiting) == [None, None]
