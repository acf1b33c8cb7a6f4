"""The client's retries against a real broker whose Redis is frozen (SIGSTOP) and thawed, or
stopped and started again (SPEC §3.8, docs/client.md).

The broker answers within its one-second deadline: 504 for a write sent to the frozen Redis,
503 when nothing was sent. The client retries by itself; once Redis answers again the first
attempt's write runs, and the Idempotency-Key makes the retries return its key instead of
adding the message again. A take is not repeated after a 504: that take ran, later.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from restmq.client import AsyncClient, Client, Retry
from restmq.errors import OutcomeUnknown, RestMQError, StorageUnavailable
from tests.helpers.broker import Broker, make_broker
from tests.helpers.redis_server import RedisServer
from tests.helpers.wait import async_wait_until, wait_until

DEADLINE = "1"  # the broker's --request-timeout, seconds
PATIENT = 60.0  # seconds a test waits for a retry to show or a call to end


@dataclass(frozen=True)
class Watched(Retry):
    """A retry policy that records every failure it is asked about (the test's signal that
    an attempt failed, to heal the fault then)."""

    failures: list[RestMQError] = field(default_factory=list)

    def pause(
        self, error: RestMQError, attempt: int, elapsed: float, repeatable: bool = True
    ) -> float | None:
        self.failures.append(error)
        return Retry.pause(self, error, attempt, elapsed, repeatable)


def watched() -> Watched:
    return Watched(attempts=40, total=PATIENT, initial=0.05, maximum=0.5)


@dataclass
class Stalled:
    redis: RedisServer
    broker: Broker
    queue: str = field(default_factory=lambda: f"q-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[Stalled]:
    """A broker with a one-second request deadline on a Redis of this test's own."""
    redis = RedisServer(tmp_path / "redis").start()
    broker = make_broker(tmp_path, redis.url, "rmqc-retry:", ("--request-timeout", DEADLINE))
    broker.start()
    try:
        yield Stalled(redis, broker)
    finally:
        redis.thaw()
        broker.stop()
        redis.stop()


class Call(threading.Thread):
    """A blocking client call in a thread of its own."""

    def __init__(self, run: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._run, self.result, self.error = run, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self._run()
        except BaseException as exc:  # re-raised by outcome
            self.error = exc

    def outcome(self) -> Any:
        self.join(PATIENT)
        assert not self.is_alive(), "the call did not end"
        if self.error is not None:
            raise self.error
        return self.result


def any_504(retry: Watched) -> bool:
    return any(isinstance(error, OutcomeUnknown) for error in retry.failures)


def values_in(client: Client, queue: str) -> list[str]:
    return [message.value for message in client.take(queue, count=100)]


def test_an_add_retried_through_a_frozen_redis_is_stored_once(stalled: Stalled) -> None:
    retry = watched()
    with Client(stalled.broker.url, retry=retry) as mq, Client(stalled.broker.url) as check:
        stalled.redis.freeze()
        single = Call(lambda: mq.add(stalled.queue, "once"))
        batch = Call(lambda: mq.add(stalled.queue, ["a", "b"]))
        wait_until(lambda: len(retry.failures) >= 2, PATIENT, "failed attempts")
        stalled.redis.thaw()
        keys = {single.outcome(), *batch.outcome()}
        taken = check.take(stalled.queue, count=100)

    assert sorted(m.value for m in taken) == ["a", "b", "once"]  # no duplicate
    assert {m.key for m in taken} == keys


async def test_an_async_add_retried_through_a_frozen_redis_is_stored_once(
    stalled: Stalled,
) -> None:
    retry = watched()
    async with AsyncClient(stalled.broker.url, retry=retry) as mq:
        stalled.redis.freeze()
        adding = asyncio.create_task(mq.add(stalled.queue, "once", idempotency_key="order-17"))
        await async_wait_until(lambda: any_504(retry), PATIENT, "a 504")
        stalled.redis.thaw()
        key = await asyncio.wait_for(adding, PATIENT)
        again = await mq.add(stalled.queue, "once", idempotency_key="order-17")
        taken = await mq.take(stalled.queue, count=100)

    assert again == key and [(m.key, m.value) for m in taken] == [(key, "once")]


def test_a_take_answered_504_is_raised_not_repeated(stalled: Stalled) -> None:
    retry = watched()
    with Client(stalled.broker.url, retry=retry) as mq:
        mq.add(stalled.queue, ["first", "second"])
        stalled.redis.freeze()
        try:
            with pytest.raises(OutcomeUnknown):
                mq.take(stalled.queue)
        finally:
            stalled.redis.thaw()
        assert len(retry.failures) == 1
        # The take ran once Redis answered again: a retry would have taken "second" too.
        wait_until(lambda: mq.stats(stalled.queue).len == 1, PATIENT, "the take ran")
        assert values_in(mq, stalled.queue) == ["second"]


def test_a_take_answered_503_is_repeated_until_redis_is_back(stalled: Stalled) -> None:
    retry = watched()
    with Client(stalled.broker.url, retry=retry) as mq:
        stalled.redis.stop()
        taking = Call(lambda: mq.take(stalled.queue))
        wait_until(lambda: any(isinstance(e, StorageUnavailable) for e in retry.failures),
                   PATIENT, "a 503")
        stalled.redis.start()  # empty: nothing to take, but an answer
        assert taking.outcome() is None
        assert mq.add(stalled.queue, "after") == f"{stalled.queue}:1"


def test_an_ack_answered_504_and_retried_is_done_once(stalled: Stalled) -> None:
    retry = watched()
    with Client(stalled.broker.url, retry=retry) as mq:
        mq.add(stalled.queue, ["job", "next"])
        lease = mq.reserve(stalled.queue, timeout=120)
        assert lease is not None
        stalled.redis.freeze()
        acking = Call(lambda: mq.ack(lease))
        wait_until(lambda: any_504(retry), PATIENT, "a 504")
        stalled.redis.thaw()
        assert acking.outcome() is None  # done, though a retry found the message gone
        stats = mq.stats(stalled.queue)
        assert (stats.len, stats.leased) == (1, 0)
