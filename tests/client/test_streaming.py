"""Streaming with the client library over comet, SSE and WebSocket, sync and async, against
real brokers: delivery, reconnection after the broker restarts, and SSE replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

import pytest

from restmq.client import AsyncClient, Client, Message, Via
from restmq.errors import BadRequest
from tests.client.conftest import Drain, wait_consumers
from tests.helpers.broker import Broker, free_port

TRANSPORTS: list[Via] = ["sse", "comet", "ws"]
VALUES = ["plain", "", 'quote " \\', "line\nbreak", "sep\u2028\x85x", "é ✓"]
QUICK = 0.3  # the longest backoff in tests: reconnect quickly
# A stopped broker's consumers leave /stats at once, or (WebSocket, seen) after this timeout.
FAST = ("--presence-timeout", "2")


def _pairs(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m.key, m.value) for m in messages]


@pytest.mark.parametrize("via", TRANSPORTS)
def test_a_sync_stream_yields_every_message(client: Client, queue: str, via: Via) -> None:
    with Client(client.options.server) as consumer:
        drain = Drain(consumer.stream(queue, via), len(VALUES))
        wait_consumers(client, queue, 1)
        keys = client.add(queue, VALUES)
        received = drain.join()
    assert _pairs(received) == list(zip(keys, VALUES, strict=True))
    assert all(m.queue == queue for m in received)


async def _collect(
    messages: AsyncGenerator[Message, None], count: int, into: list[Message] | None = None
) -> list[Message]:
    """Iterate ``messages`` until ``count`` arrived, appending them to ``into`` as they come."""
    received = [] if into is None else into
    async with aclosing(messages) as stream:
        async for message in stream:
            received.append(message)
            if len(received) == count:
                break
    return received


async def _until(received: list[Message], count: int, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if len(received) >= count:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{count} streamed messages (got {len(received)})")


async def _wait_consumers(aclient: AsyncClient, queue: str, count: int) -> None:
    for _ in range(1000):
        if (await aclient.stats(queue)).consumers == count:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{count} consumers of {queue}")


@pytest.mark.parametrize("via", TRANSPORTS)
async def test_an_async_stream_yields_every_message(
    aclient: AsyncClient, queue: str, via: Via
) -> None:
    collecting = asyncio.create_task(_collect(aclient.stream(queue, via), len(VALUES)))
    await _wait_consumers(aclient, queue, 1)
    keys = await aclient.add(queue, VALUES)
    received = await asyncio.wait_for(collecting, 30)
    assert _pairs(received) == list(zip(keys, VALUES, strict=True))


def test_a_stream_with_an_invalid_queue_fails_at_once(client: Client) -> None:
    with pytest.raises(BadRequest):
        client.stream("a/b")
    with pytest.raises(ValueError, match="via"):
        client.stream("q", "carrier-pigeon")  # type: ignore[arg-type]


def test_a_refused_stream_raises_instead_of_reconnecting(
    client: Client, queue: str
) -> None:
    with pytest.raises(BadRequest, match="Last-Event-ID"):
        next(iter(client.stream(queue, "sse", last_event_id="other:1")))


# ---------------------------------------------------------------------------- reconnection


@pytest.mark.parametrize("via", TRANSPORTS)
def test_a_sync_stream_resumes_when_its_broker_restarts(
    broker_factory: Callable[..., Broker], queue: str, via: Via
) -> None:
    """A sends, A goes away, a message waits in the queue (no consumer anywhere), A comes
    back on the same port: the iterator reconnects by itself and gets it, then new ones."""
    port = free_port()
    first, other = broker_factory(*FAST, port=port), broker_factory(*FAST)
    producer = Client(other.url)
    with producer, Client(first.url) as consumer:
        drain = Drain(consumer.stream(queue, via, max_backoff=QUICK), 3)
        wait_consumers(producer, queue, 1)
        producer.add(queue, "before")
        drain.wait_for(1)
        first.stop()
        wait_consumers(producer, queue, 0)
        producer.add(queue, "while away")
        broker_factory(*FAST, port=port)
        drain.wait_for(2)
        producer.add(queue, "after")
        received = drain.join()
    assert [m.value for m in received] == ["before", "while away", "after"]


@pytest.mark.parametrize("via", TRANSPORTS)
async def test_an_async_stream_resumes_when_its_broker_restarts(
    broker_factory: Callable[..., Broker], queue: str, via: Via
) -> None:
    port = free_port()
    first, other = broker_factory(*FAST, port=port), broker_factory(*FAST)
    async with AsyncClient(other.url) as producer, AsyncClient(first.url) as consumer:
        received: list[Message] = []
        stream = consumer.stream(queue, via, max_backoff=QUICK)
        collecting = asyncio.create_task(_collect(stream, 3, received))
        await _wait_consumers(producer, queue, 1)
        await producer.add(queue, "before")
        await _until(received, 1)
        await asyncio.to_thread(first.stop)
        await _wait_consumers(producer, queue, 0)
        await producer.add(queue, "while away")
        await asyncio.to_thread(broker_factory, *FAST, port=port)
        await _until(received, 2)
        await producer.add(queue, "after")
        await asyncio.wait_for(collecting, 30)
    assert [m.value for m in received] == ["before", "while away", "after"]


def test_sse_replays_the_broadcasts_missed_while_disconnected(
    broker_factory: Callable[..., Broker], queue: str
) -> None:
    """X streams from A, Y from B. A goes away; two messages are broadcast meanwhile: Y
    takes them out of the queue, so they wait nowhere but in the history window. When A is
    back, X reconnects with Last-Event-ID and the broker replays them."""
    port = free_port()
    first, other = broker_factory(*FAST, port=port), broker_factory(*FAST)
    producer = Client(other.url)
    with producer, Client(first.url) as x_client, Client(other.url) as y_client:
        x = Drain(x_client.stream(queue, "sse", max_backoff=QUICK), 4)
        y = Drain(y_client.stream(queue, "sse"), 4)
        wait_consumers(producer, queue, 2)
        producer.add(queue, "seen by both")
        x.wait_for(1)
        first.stop()
        wait_consumers(producer, queue, 1)
        producer.add(queue, ["missed 1", "missed 2"])
        y.wait_for(3)
        assert producer.stats(queue).len == 0
        broker_factory(*FAST, port=port)
        x.wait_for(3)
        producer.add(queue, "live again")
        received, _ = x.join(), y.join()
    assert [m.value for m in received] == ["seen by both", "missed 1", "missed 2", "live again"]


async def test_async_sse_replays_from_a_given_last_event_id(
    aclient: AsyncClient, queue: str
) -> None:
    """A consumer that starts from a known key gets the broadcasts after it first."""
    collecting = asyncio.create_task(_collect(aclient.stream(queue, "sse"), 3))
    await _wait_consumers(aclient, queue, 1)
    keys = await aclient.add(queue, ["a", "b", "c"])
    await asyncio.wait_for(collecting, 30)
    replay = aclient.stream(queue, "sse", last_event_id=keys[0])
    received = await asyncio.wait_for(_collect(replay, 2), 30)
    assert _pairs(received) == [(keys[1], "b"), (keys[2], "c")]
