"""Many producers and consumers on one queue over real HTTP, against two worker processes.

Every message must be taken exactly once, with the value it was sent with, and in FIFO order:
the keys a producer gets grow with its sequence numbers, each consumer sees keys in increasing
order (it always gets the oldest waiting message), and sorting everything taken by key gives
each producer's messages back in the order they were sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable

import aiohttp
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans

PRODUCERS = 20
PER_PRODUCER = 500
CONSUMERS = 20
TOTAL = PRODUCERS * PER_PRODUCER
QUEUE = "load"
DEADLINE = 100.0  # a hang guard; on an idle machine the run takes about 10 s


def key_number(key: str) -> int:
    queue, _, number = key.rpartition(":")
    assert queue == QUEUE, key
    return int(number)


class Run:
    """What the producers were told and what the consumers got."""

    def __init__(self, broker: Broker, http: aiohttp.ClientSession) -> None:
        self.url = f"{broker.url}/q/{QUEUE}"
        self.http = http
        self.sent: dict[str, str] = {}  # key -> value
        self.taken: list[list[tuple[int, str]]] = [[] for _ in range(CONSUMERS)]
        self.count = 0
        self.posted = 0
        self.news = asyncio.Event()  # set on every accepted message and at the end

    async def produce(self, producer: int) -> None:
        last = 0
        for seq in range(PER_PRODUCER):
            value = f"{producer}:{seq}"
            async with self.http.post(
                self.url, data=value.encode(), headers={"Content-Type": "text/plain"}
            ) as resp:
                body = await resp.read()
                assert resp.status == 200, body
            key = body.decode().removesuffix("\r\n")
            number = key_number(key)
            assert number > last, f"producer {producer}: key {key} after {last}"
            last = number
            self.sent[key] = value
            self.posted += 1
            self.news.set()

    async def consume(self, consumer: int) -> None:
        while self.count < TOTAL:
            posted_before = self.posted
            async with self.http.get(self.url) as resp:
                body = await resp.read()
                status = resp.status
            if status == 204:
                assert body == b""
                await self._news_since(posted_before)
                continue
            assert status == 200, body
            message = json.loads(body)
            self.taken[consumer].append((key_number(message["key"]), message["value"]))
            self.count += 1
            if self.count == TOTAL:
                self.news.set()

    async def _news_since(self, posted_before: int) -> None:
        """After a 204, poll again once a message was accepted since that poll began.

        Consumers stay concurrent with the producers; they only stop hammering an empty queue.
        """
        if self.posted == posted_before and self.count < TOTAL:
            self.news.clear()
            await self.news.wait()


async def run_load(broker: Broker) -> Run:
    connector = aiohttp.TCPConnector(limit=PRODUCERS + CONSUMERS)
    async with aiohttp.ClientSession(connector=connector) as http:
        run = Run(broker, http)
        tasks = [run.produce(p) for p in range(PRODUCERS)]
        tasks += [run.consume(c) for c in range(CONSUMERS)]
        try:
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*tasks)
        except TimeoutError:
            raise AssertionError(
                f"not done in {DEADLINE} s: {run.posted} accepted, {run.count} taken"
            ) from None
    return run


def check_exactly_once(run: Run) -> list[tuple[int, str]]:
    everything = [item for items in run.taken for item in items]
    numbers = [number for number, _ in everything]
    assert len(everything) == TOTAL
    assert len(set(numbers)) == TOTAL, "a message was taken twice"
    assert {f"{QUEUE}:{n}": value for n, value in everything} == run.sent
    return everything


def check_fifo(run: Run, everything: list[tuple[int, str]]) -> None:
    for consumer, items in enumerate(run.taken):
        numbers = [number for number, _ in items]
        assert numbers == sorted(numbers), f"consumer {consumer} got an older message later"
    by_producer: dict[str, list[int]] = defaultdict(list)
    for _, value in sorted(everything):
        producer, seq = value.split(":")
        by_producer[producer].append(int(seq))
    assert len(by_producer) == PRODUCERS
    for producer, seqs in by_producer.items():
        assert seqs == list(range(PER_PRODUCER)), f"producer {producer} out of order"


async def test_twenty_producers_and_twenty_consumers_move_every_message_once_in_order(
    broker_factory: Callable[..., Broker], backend: Backend, raw_redis: Redis
) -> None:
    broker = broker_factory("--workers", "2")

    run = await run_load(broker)

    everything = check_exactly_once(run)
    check_fifo(run, everything)
    assert sum(1 for items in run.taken if items) > 1, "only one consumer ever got a message"
    async with aiohttp.ClientSession() as http, http.get(f"{broker.url}/stats/{QUEUE}") as resp:
        stats = await resp.json()
    assert (stats["len"], stats["leased"], stats["delayed"]) == (0, 0, 0)
    await assert_no_orphans(raw_redis, backend.prefix)
