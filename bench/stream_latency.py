"""Delivery latency: from the answer to ``POST /q/<queue>`` to the message at a waiting consumer.

The producer and the consumer run in this one asyncio loop, so both ends are timed with the
same ``time.perf_counter``. A consumer's arrival time is taken when its reading task gets the
line, which includes the client's own work (one event-loop wake-up and aiohttp's parsing);
what the client adds is measured beside it: its CPU per message, how late its loop runs a
timer (``loop lag``), and the round trip of ``GET /livez`` through the same client.

When the message's chunk and the POST's answer become readable in the same loop turn, the
loop may hand over the message first: such an arrival counts as 0 ms (``early`` counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from statistics import quantiles

import aiohttp

STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
ARRIVAL_TIMEOUT = 5.0  # seconds; a message later than this counts as lost
WARMUP = 20
LAG_TICK = 0.002

Post = Callable[[str], Awaitable[None]]


def percentile_ms(samples: list[float], q: int) -> float:
    """The q-th percentile (1-99) of samples in seconds, in milliseconds."""
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0] * 1000
    return quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


@dataclass(frozen=True, slots=True)
class Case:
    transport: str  # "comet" or "sse"
    placement: str  # "same daemon" or "other daemon"
    rate: float | None  # messages per second; None: the next after the previous arrived


@dataclass
class Result:
    transport: str
    placement: str
    mode: str
    messages: int
    lost: int
    early: int  # arrived before the POST's answer was read (counted as 0 ms)
    p50_ms: float
    p99_ms: float
    max_ms: float
    post_p50_ms: float  # the POST's own round trip
    client_cpu_us: float  # this process's CPU per message (producer + consumer + timing)
    loop_lag_p99_ms: float


class Stream:
    """One streaming consumer read in the background; arrival time per message value."""

    def __init__(self, response: aiohttp.ClientResponse, transport: str) -> None:
        self._response = response
        self._parse = _comet_value if transport == "comet" else _sse_value
        self.arrivals: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for line in self._response.content:
            now = time.perf_counter()
            value = self._parse(line)
            if value is None:
                continue
            self.arrivals[value] = now
            waiter = self._waiters.pop(value, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)

    def expect(self, value: str) -> asyncio.Future[float]:
        """A future for the arrival time of ``value`` (already done if it came)."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if value in self.arrivals:
            future.set_result(self.arrivals[value])
        else:
            self._waiters[value] = future
        return future

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await self.task
        self._response.close()


def _comet_value(line: bytes) -> str | None:
    line = line.strip()
    if not line:
        return None  # a heartbeat
    value: str = json.loads(line)["value"]
    return value


def _sse_value(line: bytes) -> str | None:
    if not line.startswith(b"data:"):
        return None  # id:, a comment heartbeat or the blank line that ends an event
    value: str = json.loads(line[5:])["value"]
    return value


async def open_stream(
    session: aiohttp.ClientSession, base: str, queue: str, transport: str
) -> Stream:
    """Connect a consumer; once the headers are in, the broker has registered it."""
    path, headers = ("c", {}) if transport == "comet" else ("sse", {"Accept": "text/event-stream"})
    response = await session.get(f"{base}/{path}/{queue}", headers=headers, timeout=STREAM_TIMEOUT)
    response.raise_for_status()
    return Stream(response, transport)


def poster(session: aiohttp.ClientSession, base: str, queue: str) -> Post:
    async def post(value: str) -> None:
        async with session.post(f"{base}/q/{queue}", data={"value": value}) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"POST answered {response.status}: {await response.text()}")

    return post


@dataclass
class Timing:
    """Per message: when the POST was sent and answered, and when the message arrived."""

    sent: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)


async def _timed_post(post: Post, value: str, timing: Timing) -> None:
    timing.sent[value] = time.perf_counter()
    await post(value)
    timing.answered[value] = time.perf_counter()


async def one_at_a_time(post: Post, stream: Stream, values: list[str], timing: Timing) -> None:
    """Each message is posted once the previous one has arrived."""
    for value in values:
        arrival = stream.expect(value)
        await _timed_post(post, value, timing)
        with contextlib.suppress(TimeoutError):
            timing.arrived[value] = await asyncio.wait_for(arrival, ARRIVAL_TIMEOUT)


async def steady(
    post: Post, stream: Stream, values: list[str], rate: float, timing: Timing
) -> None:
    """Messages posted on a fixed schedule, whether or not the previous one has arrived."""
    arrivals = {value: stream.expect(value) for value in values}
    start = time.perf_counter()
    posts = []
    for i, value in enumerate(values):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        posts.append(asyncio.create_task(_timed_post(post, value, timing)))
    await asyncio.gather(*posts)
    await asyncio.wait(arrivals.values(), timeout=ARRIVAL_TIMEOUT)
    timing.arrived.update({v: f.result() for v, f in arrivals.items() if f.done()})


class LoopLag:
    """How late this loop wakes a timer: what the client itself adds to every timestamp."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.samples.append(max(0.0, time.perf_counter() - asked - LAG_TICK))

    async def stop(self) -> float:
        """The p99 lag in ms."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return percentile_ms(self.samples, 99)


async def measure(case: Case, post: Post, stream: Stream, values: list[str]) -> Result:
    """Warm the path up, then time ``values`` as the case says."""
    for value in (f"warmup-{i}" for i in range(WARMUP)):
        await one_at_a_time(post, stream, [value], Timing())
    timing = Timing()
    lag = LoopLag()
    cpu_before = time.process_time()
    if case.rate is None:
        await one_at_a_time(post, stream, values, timing)
    else:
        await steady(post, stream, values, case.rate, timing)
    cpu = time.process_time() - cpu_before
    return _result(case, values, timing, cpu, await lag.stop())


def _result(case: Case, values: list[str], timing: Timing, cpu: float, lag_ms: float) -> Result:
    arrived = [v for v in values if v in timing.arrived]
    latencies = [timing.arrived[v] - timing.answered[v] for v in arrived]
    posts = [timing.answered[v] - timing.sent[v] for v in values]
    mode = "one at a time" if case.rate is None else f"steady {case.rate:g}/s"
    return Result(
        transport=case.transport,
        placement=case.placement,
        mode=mode,
        messages=len(values),
        lost=len(values) - len(arrived),
        early=sum(1 for x in latencies if x < 0),
        p50_ms=percentile_ms([max(0.0, x) for x in latencies], 50),
        p99_ms=percentile_ms([max(0.0, x) for x in latencies], 99),
        max_ms=max(latencies, default=float("nan")) * 1000,
        post_p50_ms=percentile_ms(posts, 50),
        client_cpu_us=cpu / len(values) * 1e6,
        loop_lag_p99_ms=lag_ms,
    )


async def livez_round_trip(
    session: aiohttp.ClientSession, base: str, count: int
) -> tuple[float, float, float]:
    """``GET /livez`` one at a time, the floor of one HTTP exchange through this client:
    p50 and p99 in ms, and this process's CPU per request in µs."""
    samples = []
    cpu_before = time.process_time()
    for _ in range(count):
        began = time.perf_counter()
        async with session.get(f"{base}/livez") as response:
            await response.read()
        samples.append(time.perf_counter() - began)
    cpu_us = (time.process_time() - cpu_before) / count * 1e6
    return percentile_ms(samples, 50), percentile_ms(samples, 99), cpu_us
