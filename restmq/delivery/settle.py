"""Batched settlements: credits given back, roundrobin leases settled or released.

Transports report every written delivery; doing one Redis call per delivery would cost more
than the delivery itself, so reports are gathered and sent once per event-loop turn, one
``delivered.lua`` call per queue. After credits come back, the queue's pump is kicked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from restmq.delivery.consumer import Delivery
from restmq.engine.streams import StreamStore
from restmq.errors import RestMQError

log = logging.getLogger("restmq.delivery")
RETRY_DELAY = 0.5


@dataclass
class _Pending:
    credits: Counter[str] = field(default_factory=Counter)
    settled: list[tuple[str, str]] = field(default_factory=list)
    released: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class Settlements:
    """Collects what transports wrote and flushes it to Redis once per loop turn."""

    def __init__(self, streams: StreamStore, kick: Callable[[str], None]) -> None:
        self._streams = streams
        self._kick = kick
        self._pending: dict[str, _Pending] = defaultdict(_Pending)
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, queue: str, member: str, delivery: Delivery) -> None:
        pending = self._pending[queue]
        pending.credits[member] += 1
        if delivery.leased:
            pending.settled.append((member, delivery.msg_id))
        self._schedule()

    def release(self, queue: str, member: str, msg_id: str) -> None:
        """A roundrobin message reached a consumer that is gone: put it back."""
        self._pending[queue].released[member].append(msg_id)
        self._schedule()

    async def flush(self, timeout: float) -> None:
        """Send what is pending now and wait (up to ``timeout`` seconds) for every send."""
        if self._scheduled:
            self._flush()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, defaultdict(_Pending)
        for queue, pending in batch.items():
            task = asyncio.get_running_loop().create_task(self._send(queue, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, queue: str, pending: _Pending) -> None:
        try:
            if pending.credits or pending.settled:
                await self._streams.delivered(queue, pending.credits, pending.settled)
            for member, ids in pending.released.items():
                await self._streams.release(queue, member, ids)
        except RestMQError as exc:
            log.warning("settlement for %r failed (%s); retrying", queue, exc.message)
            asyncio.get_running_loop().call_later(RETRY_DELAY, self._merge, queue, pending)
            return
        self._kick(queue)

    def _merge(self, queue: str, pending: _Pending) -> None:
        """Put a failed settlement back to be sent again (credits must not be lost)."""
        into = self._pending[queue]
        into.credits.update(pending.credits)
        into.settled.extend(pending.settled)
        for member, ids in pending.released.items():
            into.released[member].extend(ids)
        self._schedule()
