"""A mixed load on two daemons: TTLs, takes, soft gets, deletes and purges, all at once.

Afterwards the keyspace must hold no value without a reference and no reference without a
value, the messages with a TTL must stop counting once expired, nothing returned may have been
null, and no message may have been returned after its TTL had surely run out.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until

QUEUES = [f"mix{i}" for i in range(4)]
TTLS: list[float | None] = [None, 0.2, 0.5, 1.0]
PRODUCERS, ADDS = 4, 120
TAKERS, TAKES = 4, 80
GETTERS, GETS = 2, 60
DELETERS, DELETES = 2, 50
PURGES = 5
# Redis stamps a TTL with its own clock (the same clock as time.time() here) and in whole ms.
CLOCK_MARGIN = 0.005


@dataclass
class Returned:
    """A message some request returned, and when that request was sent."""

    sent_at: float
    key: str
    value: Any
    how: str


@dataclass
class Mix:
    brokers: list[Broker]
    http: aiohttp.ClientSession
    rng: random.Random
    # Values are unique; keys are not (a purged queue numbers its messages from 1 again).
    accepted: dict[str, str] = field(default_factory=dict)  # value -> key
    expires_by: dict[str, float] = field(default_factory=dict)  # value -> latest expiry
    returned: list[Returned] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    producing: int = PRODUCERS
    statuses: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.rng.choice(self.brokers).url + path

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        async with self.http.request(method, self.url(path), **kw) as resp:
            body = await resp.read()
        self.statuses.append(resp.status)
        assert resp.status in (200, 204), (method, path, resp.status, body)
        return resp.status, body

    async def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        _, body = await self.request("POST", "/queue", json=cmd)
        answer: dict[str, Any] = json.loads(body)
        return answer

    def note(self, sent_at: float, key: str, value: Any, how: str) -> None:
        self.returned.append(Returned(sent_at, key, value, how))

    async def wait_for_news(self) -> None:
        """After an empty answer: go on once a producer made progress (or all are done)."""
        if self.producing:
            self.progress.clear()
            await self.progress.wait()

    async def produce(self, producer: int) -> None:
        for n in range(ADDS):
            queue, ttl = self.rng.choice(QUEUES), self.rng.choice(TTLS)
            value = f"{'ttl' if ttl else 'keep'}:{producer}:{n}"
            if n % 2:
                answer = await self.command(
                    {"cmd": "add", "queue": queue, "value": value, "ttl": ttl}
                )
                key = answer["key"]
            else:
                form = {"value": value} if ttl is None else {"value": value, "ttl": str(ttl)}
                _, body = await self.request("POST", f"/q/{queue}", data=form)
                key = body.decode().removesuffix("\r\n")
            if ttl:
                self.expires_by[value] = time.time() + ttl + CLOCK_MARGIN
            self.accepted[value] = key
            self.progress.set()
        self.producing -= 1
        self.progress.set()

    async def take(self, _: int) -> None:
        for n in range(TAKES):
            queue, sent_at = self.rng.choice(QUEUES), time.time()
            if n % 2:
                status, body = await self.request("GET", f"/q/{queue}")
                found = json.loads(body) if status == 200 else None
            else:
                answer = await self.command({"cmd": "take", "queue": queue})
                found = None if answer.get("error") == "empty queue" else answer
            if found is None:
                await self.wait_for_news()
            else:
                self.note(sent_at, found["key"], found["value"], "take")

    async def soft_get(self, _: int) -> None:
        for _n in range(GETS):
            queue, sent_at = self.rng.choice(QUEUES), time.time()
            answer = await self.command({"cmd": "get", "queue": queue})
            if answer.get("error") == "empty queue":
                await self.wait_for_news()
            else:
                self.note(sent_at, answer["key"], answer["value"], "get")

    async def delete(self, _: int) -> None:
        for _n in range(DELETES):
            if not self.accepted:
                await self.wait_for_news()
                continue
            key = self.rng.choice(list(self.accepted.values()))
            answer = await self.command({"cmd": "del", "queue": key.rpartition(":")[0], "key": key})
            assert isinstance(answer["deleted"], bool), answer

    async def purge(self) -> None:
        for n in range(1, PURGES + 1):
            while self.producing and len(self.accepted) < n * PRODUCERS * ADDS // (PURGES + 1):
                self.progress.clear()
                await self.progress.wait()
            _, body = await self.request("DELETE", f"/q/{self.rng.choice(QUEUES)}")
            assert b'"purged": ' in body


async def run_mix(brokers: list[Broker]) -> Mix:
    async with aiohttp.ClientSession() as http:
        mix = Mix(brokers, http, random.Random(20260))
        work = [mix.produce(i) for i in range(PRODUCERS)]
        work += [mix.take(i) for i in range(TAKERS)]
        work += [mix.soft_get(i) for i in range(GETTERS)]
        work += [mix.delete(i) for i in range(DELETERS)]
        work.append(mix.purge())
        async with asyncio.timeout(60):
            await asyncio.gather(*work)
    return mix


def check_returned(mix: Mix) -> None:
    assert len(mix.returned) > 50, "the load returned too few messages to mean anything"
    for item in mix.returned:
        assert isinstance(item.value, str), item  # never null
        assert mix.accepted.get(item.value) == item.key, item
        deadline = mix.expires_by.get(item.value)
        assert deadline is None or item.sent_at <= deadline, f"returned after expiry: {item}"
    assert {item.how for item in mix.returned} == {"take", "get"}


async def stats(brokers: list[Broker], queue: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{brokers[0].url}/stats/{queue}") as r:
        assert r.status == 200
        found: dict[str, Any] = await r.json()
        return found


async def drain(brokers: list[Broker], queue: str) -> list[str]:
    values: list[str] = []
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{brokers[-1].url}/q/{queue}") as resp:
                if resp.status == 204:
                    return values
                assert resp.status == 200
                values.append((await resp.json())["value"])


async def test_a_mixed_load_with_ttls_leaves_no_orphan_and_no_null(
    broker_factory: Callable[..., Broker], backend: Backend, raw_redis: Redis
) -> None:
    brokers = [broker_factory(), broker_factory()]
    keys = Keys(backend.prefix)

    mix = await run_mix(brokers)

    check_returned(mix)

    # The keyspace check reads a queue's keys one by one, so it runs once nothing moves any
    # more: when every message with a TTL is gone (the brokers' sweepers expire them).
    async def expired_stop_counting() -> bool:
        for queue in QUEUES:
            if await raw_redis.zcard(keys.queue_key(queue, "exp")):
                return False
        return True

    await async_wait_until(expired_stop_counting, 10, "every TTL message is gone")
    await assert_no_orphans(raw_redis, backend.prefix)
    for queue in QUEUES:
        counted = await stats(brokers, queue)
        assert (counted["leased"], counted["delayed"]) == (0, 0)
        values = await drain(brokers, queue)
        assert len(values) == counted["len"], queue
        assert all(value.startswith("keep:") for value in values), values
    await assert_no_orphans(raw_redis, backend.prefix)
