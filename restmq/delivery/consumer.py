"""A streaming consumer as the delivery layer sees it: a name, a queue and a bounded outbox.

The transport (comet, SSE, WebSocket) reads deliveries from ``next`` and writes them; the hub
fills the outbox from Redis. The outbox never holds more than the consumer's credits (the
claim script sends no more), plus a small slack; a consumer past ``limit`` is closed as too
slow (SPEC §9, bounded memory).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message on its way to one consumer; ``leased`` for roundrobin messages.

    ``received`` is when it reached this daemon (monotonic), for the delivery latency metric.
    """

    msg_id: str
    key: str
    value: str
    leased: bool
    received: float = field(default_factory=time.monotonic)


class Consumer:
    """One live streaming connection of this daemon."""

    def __init__(self, queue: str, member: str, limit: int) -> None:
        self.queue = queue
        self.member = member
        self.limit = limit
        self._outbox: deque[Delivery] = deque()
        self._wakeup = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_reason = ""

    def offer(self, delivery: Delivery) -> bool:
        """Queue a delivery; False (and the consumer closes) when it is too far behind."""
        if self.closed.is_set():
            return False
        if len(self._outbox) >= self.limit:
            self.close("too slow: outbox full")
            return False
        self._outbox.append(delivery)
        self._wakeup.set()
        return True

    async def next(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None when closed or after ``timeout`` seconds idle."""
        while not self._outbox:
            if self.closed.is_set():
                return None
            self._wakeup.clear()  # close() sets it too
            try:
                async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        return self._outbox.popleft()

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            self._wakeup.set()

    def drain(self) -> list[Delivery]:
        """Take what was never written (to give roundrobin messages back)."""
        pending = list(self._outbox)
        self._outbox.clear()
        return pending
