"""A mixed workload against a real broker that keeps a ledger of every answer it got.

Producers (plain ones that record each answer, and retrying ones that send an
``Idempotency-Key`` and retry 503/504 until they get a 200), a taker (``GET /q``), a leasing
consumer (reserve + ack) and a roundrobin comet stream all work on one queue while a test
injects a storage fault. ``Ledger.check`` then states what SPEC §2 and §3.8 promise: no value
stored twice, no key handed out twice (but a lease that was never acknowledged), nothing that
was answered 503 exists, and every value answered 200 was delivered — less what the fault is
documented to lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import aiohttp

QUEUE = "faults"
RETRYABLE = frozenset({503, 504})
PACE = 0.01  # between requests of one client, so the broker's CPU stays with the fault


@dataclass
class Ledger:
    """What every client of the workload was told."""

    answered: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # value -> (time, status) of each produce attempt
    retried: set[str] = field(default_factory=set)  # values sent with an Idempotency-Key
    # (how, key, value) in order; how: take, stream, lease, or acked (an ack answered 200)
    deliveries: list[tuple[str, str, str]] = field(default_factory=list)
    unknown_takes: int = 0  # takes answered 504: each may have removed an unseen message
    last_delivery: float = field(default_factory=time.monotonic)

    def delivered(self, how: str, key: str, value: str) -> None:
        self.deliveries.append((how, key, value))
        self.last_delivery = time.monotonic()

    def statuses(self, value: str) -> set[int]:
        return {status for _, status in self.answered[value]}

    def accepted(self) -> dict[str, float]:
        """Value -> when it was first answered 200."""
        return {
            value: min(at for at, status in answers if status == 200)
            for value, answers in self.answered.items()
            if any(status == 200 for _, status in answers)
        }

    def attempted_by(self, moment: float) -> set[str]:
        """The values with a produce attempt at or before ``moment``."""
        return {v for v, answers in self.answered.items() if min(at for at, _ in answers) <= moment}

    def check(self, may_lose: frozenset[str] | set[str] = frozenset()) -> None:
        """Assert the promises. ``may_lose``: values the fault may have lost — with the
        memory of their idempotency keys, so a retry may have stored them again."""
        keys_of: dict[str, set[str]] = defaultdict(set)
        for _, key, value in self.deliveries:
            keys_of[value].add(key)
        stored_twice = {v: k for v, k in keys_of.items() if len(k) > 1 and v not in may_lose}
        assert not stored_twice, f"values stored twice: {stored_twice}"

        # A message is its key and value: a Redis that restarts empty numbers keys from 1 again.
        once = Counter((k, v) for how, k, v in self.deliveries if how in ("take", "stream"))
        twice = [m for m, n in once.items() if n > 1]
        assert not twice, f"taken twice: {[d for d in self.deliveries if d[1:] in twice]}"
        settled: set[tuple[str, str]] = set()  # taken, streamed or acked: never seen again
        for how, key, value in self.deliveries:
            assert (key, value) not in settled, f"{key} delivered ({how}) after it was settled"
            if how != "lease":
                settled.add((key, value))

        refused = {
            value for value, answers in self.answered.items()
            if value not in self.retried and {s for _, s in answers} == {503}
        }
        assert not refused & set(keys_of), "a produce answered 503 was stored"

        missing = set(self.accepted()) - set(keys_of) - may_lose
        assert len(missing) <= self.unknown_takes, (
            f"{len(missing)} accepted values never delivered "
            f"({self.unknown_takes} takes answered 504): {sorted(missing)[:10]}"
        )


class Workload:
    """The clients, started with ``start`` and stopped with ``stop_producers``/``stop``."""

    def __init__(self, base: str, ledger: Ledger) -> None:
        self.base = base
        self.ledger = ledger
        self._producing = asyncio.Event()
        self._consuming = asyncio.Event()
        self._producers: list[asyncio.Task[None]] = []
        self._consumers: list[asyncio.Task[None]] = []
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def start(self, plain: int = 2, retrying: int = 2) -> None:
        self._producing.set()
        self._consuming.set()
        self._producers = [
            *(asyncio.create_task(self._plain(i)) for i in range(plain)),
            *(asyncio.create_task(self._retrying(i)) for i in range(retrying)),
        ]
        self._consumers = [
            asyncio.create_task(self._taker()),
            asyncio.create_task(self._leaser()),
            asyncio.create_task(self._comet()),
        ]

    async def stop_producers(self) -> None:
        self._producing.clear()
        await asyncio.gather(*self._producers)

    async def stop(self) -> None:
        self._consuming.clear()
        for task in self._consumers:
            task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._session.close()

    # --- producers -------------------------------------------------------------------------

    async def _post(self, value: str, headers: dict[str, str] | None = None) -> int:
        url = f"{self.base}/q/{QUEUE}"
        try:
            async with self._session.post(url, data={"value": value}, headers=headers) as r:
                await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # no answer: as unknown as a 504
        self.ledger.answered[value].append((time.monotonic(), status))
        return status

    async def _plain(self, n: int) -> None:
        i = 0
        while self._producing.is_set():
            await self._post(f"plain{n}-{i}")
            i += 1
            await asyncio.sleep(PACE)

    async def _retrying(self, n: int) -> None:
        i = 0
        while self._producing.is_set():
            value, headers = f"retry{n}-{i}", {"Idempotency-Key": uuid.uuid4().hex}
            self.ledger.retried.add(value)
            deadline = time.monotonic() + 30
            while await self._post(value, headers) != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            i += 1
            await asyncio.sleep(PACE)

    # --- consumers -------------------------------------------------------------------------

    async def _taker(self) -> None:
        while self._consuming.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.get(f"{self.base}/q/{QUEUE}") as r:
                    body = await r.read()
                    if r.status == 200:
                        message = json.loads(body)
                        self.ledger.delivered("take", message["key"], message["value"])
                    elif r.status == 504:
                        self.ledger.unknown_takes += 1
            await asyncio.sleep(PACE)

    async def _leaser(self) -> None:
        while self._consuming.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                message = await self._reserve()
                if message is not None:
                    self.ledger.delivered("lease", message["key"], message["value"])
                    await self._ack(message)
            await asyncio.sleep(PACE)

    async def _reserve(self) -> dict[str, str] | None:
        url = f"{self.base}/q/{QUEUE}/reserve"
        async with self._session.post(url, data={"timeout": "2"}) as r:
            body = await r.read()
            return json.loads(body) if r.status == 200 else None

    async def _ack(self, message: dict[str, str]) -> None:
        url = f"{self.base}/q/{QUEUE}/ack"
        form = {"key": message["key"], "receipt": message["receipt"]}
        async with self._session.post(url, data=form) as r:
            await r.read()
            if r.status == 200:
                self.ledger.delivered("acked", message["key"], message["value"])

    async def _comet(self) -> None:
        while self._consuming.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                await self._read_comet()
            await asyncio.sleep(0.05)  # the stream ended: reconnect

    async def _read_comet(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.get(f"{self.base}/c/{QUEUE}", timeout=timeout) as r:
            if r.status != 200:
                await r.read()
                return
            async for line in r.content:
                if line.strip():
                    message = json.loads(line)
                    self.ledger.delivered("stream", message["key"], message["value"])
