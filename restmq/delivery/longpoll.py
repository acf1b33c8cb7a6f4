"""Long polling: a take or reserve that waits for a message instead of answering empty.

How this works: a request that found the queue empty becomes a waiter of this daemon. The
first waiter of a queue subscribes to the queue's channel and marks the daemon as a poller
in Redis, so adds (and requeues, promotions of delayed messages) publish a wake-up. On a
wake-up one hand-out runs per queue: it serves the waiters in arrival order, one attempt
each, and stops at the first empty answer — a thousand waiters and one message cost two
Redis calls, not a thousand. A waiter whose time runs out while the hand-out is working for
it waits for that attempt; a message that finds its waiter gone (client disconnected) is put
back at the front of the queue, exactly as it was taken. When the daemon stops (``close``),
every waiting request gets its empty answer at once, and new ones do not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from restmq import deadline
from restmq.errors import RestMQError

T = TypeVar("T")
Attempt = Callable[[], Awaitable[list[T]]]
GiveBack = Callable[[list[T]], Awaitable[None]]


class _State(enum.Enum):
    WAITING = 1
    CLAIMED = 2  # the hand-out is attempting for this waiter
    DONE = 3


@dataclass(eq=False)
class _Waiter(Generic[T]):
    attempt: Attempt[T]
    give_back: GiveBack[T]
    future: asyncio.Future[list[T]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    state: _State = _State.WAITING
    expired: bool = False  # its time ran out while an attempt was in progress


class LongPolls:
    """The waiting requests of one daemon, per queue."""

    def __init__(
        self,
        acquire: Callable[[str], Awaitable[None]],
        release: Callable[[str], Awaitable[None]],
    ) -> None:
        self._acquire = acquire  # subscribe + mark this daemon as a poller of the queue
        self._release = release
        self._waiters: dict[str, deque[_Waiter[object]]] = {}
        self._handing_out: set[str] = set()
        self._again: set[str] = set()
        self._closed = False

    def queues(self) -> list[str]:
        return list(self._waiters)

    def close(self) -> None:
        """The daemon is stopping: every waiting request is answered now, empty (an attempt in
        progress still decides for its own), and later requests do not wait."""
        self._closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if waiter.state is _State.WAITING:
                    waiter.state = _State.DONE
                    waiter.future.set_result([])

    async def wait(
        self, queue: str, attempt: Attempt[T], give_back: GiveBack[T], timeout: float
    ) -> list[T]:
        """``attempt`` now; if empty, again on every wake-up until ``timeout`` seconds pass."""
        found = await attempt()
        if found or timeout <= 0 or self._closed:
            return found
        waiter: _Waiter[T] = _Waiter(attempt, give_back)
        started = time.monotonic()
        try:
            await self._add(queue, waiter)  # type: ignore[arg-type]
            self.wake(queue)  # a message may have come before the subscription
            return await self._outcome(waiter, timeout)
        finally:
            # The wait is the request's own time, not its storage's: the calls after it (the
            # unsubscription) get the request's full deadline again.
            deadline.extend(time.monotonic() - started)
            # Gone, however it ended (even cancelled while subscribing, or while the attempt
            # in progress decides): an attempt still running gives its result back.
            waiter.state = _State.DONE
            await self._remove(queue, waiter)  # type: ignore[arg-type]

    async def _outcome(self, waiter: _Waiter[T], timeout: float) -> list[T]:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel (3.11)
                return await asyncio.shield(waiter.future)
        except TimeoutError:
            if waiter.state is _State.CLAIMED:
                waiter.expired = True
                return await waiter.future  # the attempt in progress decides
            waiter.state = _State.DONE
            return []
        except asyncio.CancelledError:
            waiter.state = _State.DONE  # an attempt in progress gives its result back
            raise

    async def _add(self, queue: str, waiter: _Waiter[object]) -> None:
        """Join the queue's waiters; the first one subscribes (``_remove`` undoes both)."""
        waiters = self._waiters.get(queue)
        if waiters is not None:
            waiters.append(waiter)
            return
        self._waiters[queue] = deque([waiter])
        await self._acquire(queue)

    async def _remove(self, queue: str, waiter: _Waiter[object]) -> None:
        waiters = self._waiters.get(queue)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove(waiter)
        if not waiters:
            del self._waiters[queue]
            await self._release(queue)

    def wake(self, queue: str) -> None:
        """A wake-up for ``queue``: run (or re-run) its hand-out."""
        if queue not in self._waiters:
            return
        if queue in self._handing_out:
            self._again.add(queue)
            return
        self._handing_out.add(queue)
        # A context of its own: the hand-out serves every waiter of the queue, so it must not
        # run under the deadline of the request that happened to wake it.
        hand_out = self._hand_out(queue)
        asyncio.get_running_loop().create_task(hand_out, context=contextvars.Context())

    async def _hand_out(self, queue: str) -> None:
        try:
            while True:
                self._again.discard(queue)
                await self._serve_in_order(queue)
                if queue not in self._again:
                    return
        finally:
            self._handing_out.discard(queue)

    async def _serve_in_order(self, queue: str) -> None:
        for waiter in list(self._waiters.get(queue, ())):
            if waiter.state is not _State.WAITING:
                continue
            if not await self._serve(waiter):
                return

    async def _serve(self, waiter: _Waiter[object]) -> bool:
        """One attempt for one waiter; False when the queue had nothing."""
        waiter.state = _State.CLAIMED
        try:
            found = await waiter.attempt()
        except RestMQError:
            found = []
        if waiter.state is _State.DONE:  # the request went away meanwhile
            if found:
                await waiter.give_back(found)
            return bool(found)
        if found or waiter.expired or self._closed:
            waiter.state = _State.DONE
            waiter.future.set_result(found)
            return bool(found)
        waiter.state = _State.WAITING
        return False
