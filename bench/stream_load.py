"""Fan-out throughput and idle connections: many comet consumers held by crowd processes.

- ``fanout``: C broadcast consumers of one queue on one daemon, spread over crowd processes;
  after a warm-up message has reached all of them, N messages are posted as fast as possible
  (batch adds of ``POST_BATCH``), and the clock stops when every consumer has all N.
  Deliveries per second = C x N / that time.
- ``idle``: many consumers connect and then wait; the daemon's VmRSS (``/proc/<pid>/status``)
  before and after gives its memory per connection; then ``/livez`` is timed and one
  broadcast message must reach every consumer.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import cpu
import redis
import storage
from broker import Broker
from stream_crowd import Crowd
from stream_latency import livez_round_trip, open_stream, poster

POST_BATCH = 100
CONNECT_CONCURRENCY = 64
READY_TIMEOUT = 180.0


@dataclass
class SlowCalls:
    """Calls of one script on the run's queue that Redis's SLOWLOG recorded."""

    script: str
    calls: int  # a lower bound: SLOWLOG keeps the server's last 128 slow commands
    max_ms: float


@dataclass
class FanoutResult:
    consumers: int
    messages: int
    deliveries: int  # delivered to every consumer (consumers x messages when complete)
    complete: bool
    seconds: float  # from the first POST to the last delivery
    deliveries_per_s: float
    post_seconds: float  # how long posting all messages took
    broker_cpu_percent: float  # of one core, over ``seconds``
    broker_cpu_us_per_delivery: float
    redis_cpu_percent: float | None
    client_cpu_percent: float  # the crowd processes together, of one core
    closed_early: int
    slow: list[SlowCalls] = field(default_factory=list)


@dataclass
class IdleResult:
    """Filled in step by step while the connections are held."""

    requested: int
    rss_before_kb: int
    connections: int = 0  # streams connected
    connect_seconds: float = 0.0
    redis_cpu_connect_s: float | None = None  # Redis's CPU seconds while they connected
    rss_after_kb: int = 0
    kb_per_connection: float = 0.0
    rss_closed_kb: int = 0  # 2 s after every stream was closed again
    fds_after: int = 0
    broker_cpu_percent_idle: float = 0.0  # of one core, while holding them (heartbeats)
    consumers_in_stats: int | None = None
    livez_p50_ms: float = 0.0
    livez_p99_ms: float = 0.0
    broadcast_seconds: float | None = None  # POST answered → the last of them has it
    closed_early: int = 0
    slow: list[SlowCalls] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.requested - self.connections


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def script_names(source: Path) -> dict[str, str]:
    """SHA1 → script name, from the checkout under test (its scripts may differ from ours)."""
    code = (
        "import json; from restmq.engine.scripts import load_scripts; "
        "print(json.dumps({s.sha: str(n) for n, s in load_scripts().items()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=source, capture_output=True, text=True, check=True
    )
    names: dict[str, str] = json.loads(done.stdout)
    return names


def slow_calls(url: str, prefix: str, queue: str, names: dict[str, str]) -> list[SlowCalls]:
    """The script calls on ``queue``'s keys among Redis's last 128 SLOWLOG entries."""
    client = redis.Redis.from_url(url)
    try:
        entries = client.slowlog_get(128)
    finally:
        client.close()
    marker = f" {prefix}{{{queue}}}:".encode()
    found: dict[str, SlowCalls] = {}
    for entry in entries:
        command: bytes = entry["command"]
        if marker not in command:
            continue
        name = _command_name(command, names)
        calls = found.setdefault(name, SlowCalls(name, 0, 0.0))
        calls.calls += 1
        calls.max_ms = max(calls.max_ms, entry["duration"] / 1000)
    return sorted(found.values(), key=lambda c: -c.max_ms)


def _command_name(command: bytes, names: dict[str, str]) -> str:
    """The script's name for EVALSHA; the command itself otherwise (run inside a script)."""
    word, _, rest = command.partition(b" ")
    if word.upper() != b"EVALSHA":
        return word.decode().upper()
    sha = rest.partition(b" ")[0].decode()
    return names.get(sha, sha[:8])


def slowlog_threshold_ms(url: str) -> float:
    client = redis.Redis.from_url(url)
    try:
        value = client.config_get("slowlog-log-slower-than").get("slowlog-log-slower-than")
    finally:
        client.close()
    return int(value or 10_000) / 1000


class Crowds:
    """Comet consumers of one queue, spread evenly over ``processes`` crowd processes."""

    def __init__(self, url: str, consumers: int, processes: int, milestones: Sequence[int]):
        share, extra = divmod(consumers, processes)
        self.members = [
            Crowd(url, share + (1 if i < extra else 0), milestones, CONNECT_CONCURRENCY)
            for i in range(processes)
        ]

    async def __aenter__(self) -> Crowds:
        await asyncio.gather(*(c.start() for c in self.members))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.stop() for c in self.members))

    async def ready(self) -> int:
        connected = await asyncio.gather(*(c.ready(READY_TIMEOUT) for c in self.members))
        return sum(connected)

    async def reached(self, milestone: int, timeout: float) -> float | None:
        """When the last consumer of all had ``milestone`` messages; None after ``timeout``."""
        try:
            ends = await asyncio.gather(*(c.reached(milestone, timeout) for c in self.members))
        except TimeoutError:
            return None
        return max(ends)

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.members]

    @property
    def closed_early(self) -> int:
        return sum(len(c.closed) for c in self.members)


async def post_many(session: aiohttp.ClientSession, base: str, queue: str, count: int) -> None:
    """``count`` messages in batch adds, one request after the other."""
    sent = 0
    while sent < count:
        values = [f"m{sent + i}" for i in range(min(POST_BATCH, count - sent))]
        async with session.post(f"{base}/q/{queue}", json={"values": values}) as response:
            if response.status != 200:
                raise RuntimeError(f"batch add answered {response.status}: {await response.text()}")
        sent += len(values)


@dataclass
class CpuMark:
    at: float
    broker: float
    redis: float | None
    clients: float


def cpu_mark(broker: Broker, redis_pid: int | None, clients: Sequence[int]) -> CpuMark:
    return CpuMark(
        at=time.perf_counter(),
        broker=cpu.total_cpu_seconds(broker.all_pids()),
        redis=cpu.cpu_seconds(redis_pid) if redis_pid else None,
        clients=cpu.total_cpu_seconds(clients),
    )


async def fanout(
    broker: Broker,
    consumers: int,
    messages: int,
    processes: int,
    timeout: float,
    names: dict[str, str],
) -> FanoutResult:
    queue = f"fanout-{consumers}"
    _, redis_pid = storage.server_info(broker.storage_url)
    milestones = (1, 1 + messages)
    async with Crowds(f"{broker.base}/c/{queue}", consumers, processes, milestones) as crowds:
        await crowds.ready()
        async with aiohttp.ClientSession() as session:
            await post_many(session, broker.base, queue, 1)  # the warm-up message
            if await crowds.reached(1, timeout) is None:
                raise RuntimeError(f"the warm-up message did not reach all {consumers} consumers")
            before = cpu_mark(broker, redis_pid, crowds.pids)
            await post_many(session, broker.base, queue, messages)
            posted = time.perf_counter()
            end = await crowds.reached(1 + messages, timeout)
        after = cpu_mark(broker, redis_pid, crowds.pids)
        closed = crowds.closed_early
    result = _fanout_result(consumers, messages, before, after, posted, end, closed)
    result.slow = slow_calls(broker.storage_url, broker.prefix, queue, names)
    return result


def _fanout_result(
    consumers: int,
    messages: int,
    before: CpuMark,
    after: CpuMark,
    posted: float,
    end: float | None,
    closed: int,
) -> FanoutResult:
    seconds = (end if end is not None else after.at) - before.at
    wall = after.at - before.at
    deliveries = consumers * messages
    redis_percent = None
    if before.redis is not None and after.redis is not None:
        redis_percent = (after.redis - before.redis) / wall * 100
    return FanoutResult(
        consumers=consumers,
        messages=messages,
        deliveries=deliveries,
        complete=end is not None,
        seconds=seconds,
        deliveries_per_s=deliveries / seconds if end is not None else float("nan"),
        post_seconds=posted - before.at,
        broker_cpu_percent=(after.broker - before.broker) / wall * 100,
        broker_cpu_us_per_delivery=(after.broker - before.broker) / deliveries * 1e6,
        redis_cpu_percent=redis_percent,
        client_cpu_percent=(after.clients - before.clients) / wall * 100,
        closed_early=closed,
    )


async def _warm(broker: Broker) -> None:
    """One stream, one message, a few /livez: the code paths are loaded before measuring."""
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, broker.base, "idle-warmup", "comet")
        arrival = stream.expect("hello")
        await poster(session, broker.base, "idle-warmup")("hello")
        await asyncio.wait_for(arrival, 10)
        await stream.close()
        await livez_round_trip(session, broker.base, 20)


async def _consumers_in_stats(base: str, queue: str) -> int | None:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/stats/{queue}") as answer:
        stats = await answer.json()
    found = stats.get("consumers")
    return int(found) if isinstance(found, int) else None


async def idle(
    broker: Broker,
    connections: int,
    processes: int,
    settle: float,
    timeout: float,
    names: dict[str, str],
) -> IdleResult:
    queue = "idle"
    await _warm(broker)
    await asyncio.sleep(1.0)
    result = IdleResult(connections, vm_rss_kb(broker.pid))
    _, redis_pid = storage.server_info(broker.storage_url)
    async with Crowds(f"{broker.base}/c/{queue}", connections, processes, (1,)) as crowds:
        before = cpu_mark(broker, redis_pid, [])
        result.connections = await crowds.ready()
        after = cpu_mark(broker, redis_pid, [])
        result.connect_seconds = after.at - before.at
        if before.redis is not None and after.redis is not None:
            result.redis_cpu_connect_s = after.redis - before.redis
        await _hold(broker, queue, settle, result)
        await _broadcast(broker, queue, crowds, timeout, result)
    await asyncio.sleep(2.0)
    result.rss_closed_kb = vm_rss_kb(broker.pid)
    result.slow = slow_calls(broker.storage_url, broker.prefix, queue, names)
    return result


async def _hold(broker: Broker, queue: str, settle: float, result: IdleResult) -> None:
    """Let the connections settle; the daemon's memory, fds, CPU and consumer count."""
    before = cpu_mark(broker, None, [])
    await asyncio.sleep(settle)
    after = cpu_mark(broker, None, [])
    result.broker_cpu_percent_idle = (after.broker - before.broker) / (after.at - before.at) * 100
    result.rss_after_kb = vm_rss_kb(broker.pid)
    result.kb_per_connection = (result.rss_after_kb - result.rss_before_kb) / max(
        result.connections, 1
    )
    result.fds_after = open_fds(broker.pid)
    result.consumers_in_stats = await _consumers_in_stats(broker.base, queue)


async def _broadcast(
    broker: Broker, queue: str, crowds: Crowds, timeout: float, result: IdleResult
) -> None:
    """/livez still answers, and one message reaches every held connection."""
    async with aiohttp.ClientSession() as session:
        result.livez_p50_ms, result.livez_p99_ms, _ = await livez_round_trip(
            session, broker.base, 50
        )
        await poster(session, broker.base, queue)("to-everyone")
        answered = time.perf_counter()
    end = await crowds.reached(1, timeout)
    result.broadcast_seconds = None if end is None else end - answered
    result.closed_early = crowds.closed_early
