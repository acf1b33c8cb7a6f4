"""The delivery hub of one daemon: its live consumers, fed from Redis without polling.

How this works:
- A consumer joins: the hub subscribes to the queue's channel (waiting for Redis's
  confirmation), registers the consumer's presence with full credits, and kicks the queue's
  pump. The join itself publishes a wake-up, so every daemon's pump for the queue runs too.
- A pump (one task per queue with local consumers) runs ``claim.lua`` whenever it is kicked:
  by a wake-up on the queue's channel (an add, a start, a requeued lease), by credits coming
  back, by a reconnect, or every ``SAFETY_SWEEP`` seconds as a safety net. The script decides,
  for all daemons at once, which consumer gets what (see ``lua/claim.lua``).
- Broadcast messages arrive on the queue's channel and go to every local consumer of it;
  roundrobin messages arrive on this daemon's own channel addressed to one consumer.
- When a transport has written a delivery it calls ``written``: credits go back (and a
  roundrobin lease is settled) in one ``delivered.lua`` call per queue per loop turn.
- A consumer that leaves gives back the roundrobin messages it was never sent; a daemon that
  dies stops refreshing presence, its consumers vanish, and its leases expire and requeue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable

from restmq import metrics
from restmq.delivery.consumer import Consumer, Delivery
from restmq.delivery.longpoll import LongPolls
from restmq.delivery.settle import Settlements
from restmq.engine.notify import Subscriber
from restmq.engine.streams import StreamStore
from restmq.errors import RestMQError
from restmq.keys import Keys, message_key
from restmq.types import Message, Reserved

log = logging.getLogger("restmq.delivery")
SAFETY_SWEEP = 5.0
SLACK = 16  # outbox room beyond the credits, for broadcasts that raced a join
SETTLE_ON_STOP = 2.0  # seconds the last settlements may take when the daemon stops
SHUTTING_DOWN = "server shutting down"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Hub:
    """Live streaming consumers of one daemon, per queue."""

    def __init__(self, streams: StreamStore, keys: Keys, subscriber_factory: Callable[
            [Callable[[str, str], None], Callable[[], None]], Subscriber]) -> None:
        self.daemon_id = uuid.uuid4().hex[:16]
        self._streams = streams
        self._keys = keys
        self._consumers: dict[str, dict[str, Consumer]] = defaultdict(dict)
        self._pumps: dict[str, _Pump] = {}
        self._numbers = itertools.count(1)
        self._settle = Settlements(streams, self._kick)
        self.subscriber = subscriber_factory(self._on_message, self._on_reconnect)
        self._tasks: list[asyncio.Task[None]] = []
        self._channel_users: Counter[str] = Counter()
        self.polls = LongPolls(self._poll_start, self._poll_stop)
        self._closing = False

    async def start(self) -> None:
        self.subscriber.keep(self._keys.daemon_channel(self.daemon_id))
        self._tasks = [
            asyncio.create_task(self.subscriber.run()),
            asyncio.create_task(self._heartbeat()),
        ]

    def close(self) -> None:
        """The daemon is stopping: answer every long poll now (empty) and end every stream;
        a stream that starts from now on ends at once."""
        self._closing = True
        self.polls.close()
        for queue in list(self._consumers):
            for consumer in list(self._consumers[queue].values()):
                consumer.close(SHUTTING_DOWN)

    async def stop(self) -> None:
        """Close every consumer, give back what they hold, stop the background tasks."""
        self.close()
        await self._settle.flush(SETTLE_ON_STOP)
        for task in [*self._tasks, *(p.task for p in self._pumps.values())]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def count(self, queue: str) -> int:
        return len(self._consumers.get(queue, {}))

    async def join(self, queue: str) -> Consumer:
        """A new live consumer of ``queue`` on this daemon."""
        member = f"{self.daemon_id}/{next(self._numbers)}"
        consumer = Consumer(queue, member, self._streams.tuning.credits + SLACK)
        if self._closing:
            consumer.close(SHUTTING_DOWN)
        await self._listen(queue)
        self._consumers[queue][member] = consumer
        self._pump(queue)
        try:
            await self._streams.join(queue, member, _now_ms())
        except BaseException:
            await asyncio.shield(self.leave(consumer))
            raise
        return consumer

    async def leave(self, consumer: Consumer) -> None:
        """Forget a consumer at once; its unsent roundrobin messages go back to the queue.
        Idempotent: a transport may call it early and again on its way out."""
        consumer.close("left")
        local = self._consumers.get(consumer.queue, {})
        if local.pop(consumer.member, None) is None:
            return
        leased = [d.msg_id for d in consumer.drain() if d.leased]
        with contextlib.suppress(RestMQError):
            await self._streams.leave(consumer.queue, [consumer.member])
            await self._streams.release(consumer.queue, consumer.member, leased)
        if not local:
            await self._retire(consumer.queue)

    def written(self, consumer: Consumer, delivery: Delivery) -> None:
        """The transport wrote ``delivery``: give a credit back, settle its lease."""
        self._settle.add(consumer.queue, consumer.member, delivery)
        metrics.delivered(consumer.queue, delivery.leased, time.monotonic() - delivery.received)

    def unwritten(self, consumer: Consumer, delivery: Delivery) -> None:
        """The transport failed to write ``delivery``: a roundrobin message goes back."""
        if delivery.leased:
            self._settle.release(consumer.queue, consumer.member, delivery.msg_id)

    async def history(self, queue: str, after_id: int) -> list[tuple[str, str]]:
        """The broadcast messages after ``after_id`` still in the queue's history window."""
        return await self._streams.history(queue, after_id)

    async def _retire(self, queue: str) -> None:
        self._consumers.pop(queue, None)
        pump = self._pumps.pop(queue, None)
        if pump:
            pump.task.cancel()
        await self._unlisten(queue)

    async def _listen(self, queue: str) -> None:
        """Subscribe to the queue's channel (once for all local users of it)."""
        self._channel_users[queue] += 1
        try:
            await self.subscriber.subscribe(self._keys.queue_channel(queue))
        except BaseException:
            await self._unlisten(queue)
            raise

    async def _unlisten(self, queue: str) -> None:
        self._channel_users[queue] -= 1
        if self._channel_users[queue] <= 0:
            del self._channel_users[queue]
            await self.subscriber.unsubscribe(self._keys.queue_channel(queue))

    async def _poll_start(self, queue: str) -> None:
        await self._listen(queue)
        deadline = _now_ms() + self._streams.tuning.presence_ms
        await self._streams.store.mark_poller(queue, self.daemon_id, deadline)

    async def _poll_stop(self, queue: str) -> None:
        with contextlib.suppress(RestMQError):
            await self._streams.store.mark_poller(queue, self.daemon_id, None)
        await self._unlisten(queue)

    async def take(self, queue: str, count: int, wait: float) -> list[Message]:
        """Take up to ``count`` messages, waiting up to ``wait`` seconds for the first."""
        store = self._streams.store
        return await self.polls.wait(
            queue, lambda: store.take(queue, count), lambda found: store.put_back(queue, found),
            wait,
        )

    async def reserve(
        self, queue: str, count: int, timeout: float, wait: float
    ) -> list[Reserved]:
        """Lease up to ``count`` messages, waiting up to ``wait`` seconds for the first."""
        store = self._streams.store

        return await self.polls.wait(
            queue, lambda: store.reserve(queue, count, timeout), store.unreserve, wait
        )

    def _pump(self, queue: str) -> None:
        if queue not in self._pumps:
            self._pumps[queue] = _Pump(queue, self._streams)
        self._pumps[queue].kick()

    def _kick(self, queue: str) -> None:
        pump = self._pumps.get(queue)
        if pump:
            pump.kick()

    def _on_reconnect(self) -> None:
        for pump in self._pumps.values():
            pump.kick()
        for queue in self.polls.queues():
            self.polls.wake(queue)

    def _on_message(self, channel: str, data: str) -> None:
        if channel.startswith(self._keys.queue_channel_prefix):
            self._on_queue_event(channel[len(self._keys.queue_channel_prefix):], data)
        else:
            self._on_roundrobin(data)

    def _on_queue_event(self, queue: str, data: str) -> None:
        kind = data[:1]
        if kind == "w":
            self._kick(queue)
            self.polls.wake(queue)
        elif kind == "b":
            _, msg_id, value = data.split("\t", 2)
            delivery = Delivery(msg_id, message_key(queue, msg_id), value, leased=False)
            for consumer in list(self._consumers.get(queue, {}).values()):
                consumer.offer(delivery)
        elif kind == "p":
            for consumer in list(self._consumers.get(queue, {}).values()):
                consumer.close("queue deleted")

    def _on_roundrobin(self, data: str) -> None:
        _, queue, member, msg_id, value = data.split("\t", 4)
        consumer = self._consumers.get(queue, {}).get(member)
        delivery = Delivery(msg_id, message_key(queue, msg_id), value, leased=True)
        if consumer is None or not consumer.offer(delivery):
            self._settle.release(queue, member, msg_id)

    async def _heartbeat(self) -> None:
        """Refresh the presence of every local consumer, well before it would lapse."""
        interval = self._streams.tuning.presence_ms / 3000
        while True:
            await asyncio.sleep(interval)
            for queue, local in list(self._consumers.items()):
                if local:
                    with contextlib.suppress(RestMQError):
                        await self._streams.refresh(queue, list(local), _now_ms())
            deadline = _now_ms() + self._streams.tuning.presence_ms
            for queue in self.polls.queues():
                with contextlib.suppress(RestMQError):
                    await self._streams.store.mark_poller(queue, self.daemon_id, deadline)


class _Pump:
    """Runs the claim script for one queue whenever kicked, and as a slow safety net."""

    def __init__(self, queue: str, streams: StreamStore) -> None:
        self.queue = queue
        self._streams = streams
        self._kicked = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    def kick(self) -> None:
        self._kicked.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
                async with asyncio.timeout(SAFETY_SWEEP):
                    await self._kicked.wait()
            self._kicked.clear()
            try:
                await self._claim_all()
            except RestMQError as exc:
                log.warning("claim on %r failed: %s", self.queue, exc.message)

    async def _claim_all(self) -> None:
        lease_ms = self._streams.tuning.lease_ms
        while await self._streams.claim(self.queue):
            await self._streams.note_leases(self.queue, _now_ms() + lease_ms)
