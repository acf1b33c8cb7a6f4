"""The long-poll waiters of one daemon (``restmq.delivery.longpoll``), without a server: the
subscription and the attempts are plain callables, so the cancellation races a disconnecting
client creates can be staged exactly."""

from __future__ import annotations

import asyncio

from restmq.delivery.longpoll import LongPolls


class Recorder:
    """acquire/release callables that count calls; acquire can be held open."""

    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def acquire(self, queue: str) -> None:
        self.acquired.append(queue)
        await self.hold.wait()

    async def release(self, queue: str) -> None:
        self.released.append(queue)


async def _nothing() -> list[str]:
    return []


async def _ignore(found: list[str]) -> None:
    raise AssertionError(f"nothing should be given back, got {found}")


async def test_a_request_cancelled_while_subscribing_leaves_no_waiter_behind() -> None:
    subs = Recorder()
    subs.hold.clear()  # the subscription is slow to be confirmed
    polls = LongPolls(subs.acquire, subs.release)

    request = asyncio.create_task(polls.wait("q", _nothing, _ignore, 10))
    while not subs.acquired:
        await asyncio.sleep(0)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)

    assert polls.queues() == []
    assert subs.released == ["q"]


async def test_a_request_cancelled_while_the_attempt_for_it_runs_gets_the_message_given_back() -> (
    None
):
    subs = Recorder()
    polls = LongPolls(subs.acquire, subs.release)
    attempts = 0
    proceed = asyncio.Event()
    given_back: list[list[str]] = []

    async def attempt() -> list[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return []  # the queue is empty when the request arrives
        await proceed.wait()  # a message came; the take is on its way
        return ["m"]

    async def give_back(found: list[str]) -> None:
        given_back.append(found)

    # The request's time runs out while the attempt is in progress, then it is cancelled.
    request = asyncio.create_task(polls.wait("q", attempt, give_back, 0.05))
    while not subs.acquired:
        await asyncio.sleep(0)
    polls.wake("q")
    while attempts < 2:
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # past the request's timeout: it now waits for the attempt
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    proceed.set()
    for _ in range(10):
        await asyncio.sleep(0)

    assert given_back == [["m"]]
    assert polls.queues() == []
