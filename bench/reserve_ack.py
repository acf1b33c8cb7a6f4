"""Reserve+ack throughput (SPEC §4, §9): leased messages acknowledged per second, against one
broker, with ``POST /q/<queue>`` measured in the same run by the same client as the baseline.

    python bench/reserve_ack.py --clients 32 --duration 10 --rounds 3

One ``restmq serve`` (one worker; the machine's Redis under a random prefix, or ``--embedded``)
is started. Each round, N concurrent aiohttp clients (one keep-alive connection each) first
``POST /q/<queue>`` for the warm-up and the measured time (the baseline, which also fills the
queue), then each loops ``POST /q/<queue>/reserve`` → ``POST /q/<queue>/ack`` with the receipt
for as long. Only operations that finish inside the measured window count. The report is
printed and written to bench/results/reserve_ack.md (raw figures in reserve_ack.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median, quantiles

import aiohttp
import cpu
import machine
import storage
import uvloop
from broker import REPO, Broker

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "bench-reliable"
VISIBILITY = "60"  # seconds: no lease expires during a run
TOP_UP_BATCH = 1000


@dataclass
class Window:
    """The measured part of a phase, between the warm-up and the end."""

    start: float
    end: float

    def holds(self, at: float) -> bool:
        return self.start <= at <= self.end


@dataclass
class Tally:
    """What the clients of one phase did inside the window."""

    ops: int = 0
    requests: int = 0
    unexpected: Counter[int] = field(default_factory=Counter)  # status -> answers (not 200)
    latencies: list[float] = field(default_factory=list)  # seconds per operation


@dataclass
class Result:
    label: str
    clients: int
    ops_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    broker_cpu_us_per_op: float
    storage_cpu_us_per_op: float | None
    ops: int
    unexpected: dict[int, int]  # status -> count; a 204 on reserve means the queue ran empty


Operation = Callable[[aiohttp.ClientSession, Tally, Window], Awaitable[None]]


def _post(base: str, value: str) -> Operation:
    async def one(session: aiohttp.ClientSession, tally: Tally, window: Window) -> None:
        began = time.perf_counter()
        async with session.post(f"{base}/q/{QUEUE}", data={"value": value}) as response:
            await response.read()
        _count(tally, window, began, requests=1, status=response.status)

    return one


def _reserve_ack(base: str) -> Operation:
    async def one(session: aiohttp.ClientSession, tally: Tally, window: Window) -> None:
        began = time.perf_counter()
        form = {"timeout": VISIBILITY}
        async with session.post(f"{base}/q/{QUEUE}/reserve", data=form) as response:
            if response.status != 200:
                await response.read()
                _count(tally, window, began, requests=1, status=response.status)
                return
            lease = await response.json()
        held = {"key": lease["key"], "receipt": lease["receipt"]}
        async with session.post(f"{base}/q/{QUEUE}/ack", data=held) as response:
            await response.read()
        _count(tally, window, began, requests=2, status=response.status)

    return one


def _count(tally: Tally, window: Window, began: float, requests: int, status: int) -> None:
    done = time.perf_counter()
    if not window.holds(done):
        return
    tally.requests += requests
    if status == 200:
        tally.ops += 1
        tally.latencies.append(done - began)
    else:
        tally.unexpected[status] += 1


async def _client(operation: Operation, tally: Tally, window: Window) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        while time.perf_counter() < window.end:
            await operation(session, tally, window)


async def _phase(
    label: str, operation: Operation, args: argparse.Namespace, broker: Broker
) -> Result:
    """N clients run ``operation`` for the warm-up and the measured time."""
    now = time.perf_counter()
    window = Window(now + args.warmup, now + args.warmup + args.duration)
    tally = Tally()
    clients = [asyncio.create_task(_client(operation, tally, window)) for _ in range(args.clients)]
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    before = _cpu(broker)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    after = _cpu(broker)
    await asyncio.gather(*clients)
    return _result(label, args.clients, tally, args.duration, before, after)


def _cpu(broker: Broker) -> tuple[float, float | None]:
    """CPU seconds so far of the broker's processes and of the storage server."""
    _, pid = storage.server_info(broker.storage_url)
    return cpu.total_cpu_seconds(broker.all_pids()), cpu.cpu_seconds(pid) if pid else None


def _result(
    label: str,
    clients: int,
    tally: Tally,
    seconds: float,
    before: tuple[float, float | None],
    after: tuple[float, float | None],
) -> Result:
    ops = max(tally.ops, 1)
    cuts = quantiles(tally.latencies, n=100) if len(tally.latencies) > 1 else [0.0] * 99
    storage_cpu = None
    if before[1] is not None and after[1] is not None:
        storage_cpu = (after[1] - before[1]) / ops * 1e6
    return Result(
        label=label,
        clients=clients,
        ops_per_s=tally.ops / seconds,
        requests_per_s=tally.requests / seconds,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        broker_cpu_us_per_op=(after[0] - before[0]) / ops * 1e6,
        storage_cpu_us_per_op=storage_cpu,
        ops=tally.ops,
        unexpected=dict(tally.unexpected),
    )


async def _top_up(base: str, value: str, needed: int) -> None:
    """Batch-add messages until ``needed`` wait, so reserve never finds the queue empty."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/stats/{QUEUE}") as response:
            waiting = (await response.json())["len"]
        while waiting < needed:
            values = [value] * min(TOP_UP_BATCH, needed - waiting)
            async with session.post(f"{base}/q/{QUEUE}", json={"values": values}) as response:
                assert response.status == 200, await response.text()
            waiting += len(values)


async def one_round(args: argparse.Namespace, broker: Broker) -> tuple[Result, Result]:
    value = "x" * args.value_size
    post = await _phase("POST /q/<queue> (baseline)", _post(broker.base, value), args, broker)
    print(_line(post), flush=True)
    # Reserve+ack costs two requests: it cannot outrun POST; twice POST's count is plenty.
    await _top_up(broker.base, value, 2 * post.ops * (args.warmup + args.duration) // args.duration)
    pairs = await _phase("reserve + ack (one pair)", _reserve_ack(broker.base), args, broker)
    print(_line(pairs), flush=True)
    return post, pairs


def _line(result: Result) -> str:
    return (
        f"  {result.label:<28} {result.ops_per_s:>8,.0f} ops/s  {result.requests_per_s:>8,.0f}"
        f" req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  broker CPU"
        f" {result.broker_cpu_us_per_op:.0f} µs/op  unexpected {_statuses(result.unexpected)}"
    )


def _median(results: list[Result]) -> Result:
    """Medians over the rounds for rates, latencies and costs; totals for the counts."""
    first = results[0]

    def mid(name: str) -> float:
        return median(getattr(r, name) for r in results)

    storage_values = [r.storage_cpu_us_per_op for r in results]
    return Result(
        label=first.label,
        clients=first.clients,
        ops_per_s=mid("ops_per_s"),
        requests_per_s=mid("requests_per_s"),
        p50_ms=mid("p50_ms"),
        p99_ms=mid("p99_ms"),
        broker_cpu_us_per_op=mid("broker_cpu_us_per_op"),
        storage_cpu_us_per_op=(
            None if None in storage_values else median(v for v in storage_values if v is not None)
        ),
        ops=sum(r.ops for r in results),
        unexpected=dict(sum((Counter(r.unexpected) for r in results), Counter())),
    )


def _statuses(unexpected: dict[int, int]) -> str:
    """``0``, or the count with the statuses: ``29 (503: 29)``."""
    if not unexpected:
        return "0"
    parts = ", ".join(f"{status}: {n}" for status, n in sorted(unexpected.items()))
    return f"{sum(unexpected.values())} ({parts})"


def render(
    command: str, header: dict[str, str], args: argparse.Namespace, post: Result, pairs: Result
) -> str:
    lines = [
        "# RestMQ reserve+ack benchmark",
        "",
        f"Command: `{command}`",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in header.items()),
        "",
        f"Load: {args.clients} concurrent aiohttp clients (one keep-alive connection each) in "
        f"one process, {args.duration} s measured after a {args.warmup} s warm-up per workload, "
        f"{args.rounds} round(s) (medians; counts are totals), {args.value_size}-byte values, "
        f"visibility timeout {VISIBILITY} s. The clients, the broker (1 worker) and Redis share "
        "the machine's cores. An op is one accepted message for POST and one acknowledged "
        'message (reserve + ack, two requests) for the pair; "unexpected" counts answers '
        "other than 200, by status (they are not ops).",
        "",
        "| workload | ops/s | req/s | p50 ms | p99 ms | broker CPU µs/op | Redis CPU µs/op "
        "| ops | unexpected |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in (post, pairs):
        redis_cpu = "n/a" if r.storage_cpu_us_per_op is None else f"{r.storage_cpu_us_per_op:.0f}"
        lines.append(
            f"| {r.label} | {r.ops_per_s:,.0f} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.broker_cpu_us_per_op:.0f} | {redis_cpu} | {r.ops:,} "
            f"| {_statuses(r.unexpected)} |"
        )
    lines += [
        "",
        f"Reserve+ack pairs per second relative to POST /q/<queue>: "
        f"**{pairs.ops_per_s / post.ops_per_s:.0%}** (requests per second: "
        f"{pairs.requests_per_s / post.requests_per_s:.0%}; by broker CPU per op: "
        f"{post.broker_cpu_us_per_op / pairs.broker_cpu_us_per_op:.0%}).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per workload")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each workload")
    parser.add_argument("--rounds", type=int, default=1, help="repeat; report the medians")
    parser.add_argument("--value-size", type=int, default=100, help="message bytes")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--embedded", action="store_true", help="the broker's own Valkey")
    parser.add_argument("--output", type=Path, default=RESULTS / "reserve_ack.md")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, broker: Broker) -> tuple[Result, Result]:
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f" round {number}/{args.rounds}", flush=True)
        rounds.append(await one_round(args, broker))
    return _median([p for p, _ in rounds]), _median([q for _, q in rounds])


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    load = machine.load_average()
    with Broker(1, None if args.embedded else args.redis_url) as broker:
        print(f"1 worker on {broker.base} (pid {broker.pid})", flush=True)
        post, pairs = uvloop.run(run(args, broker))
        version, _ = storage.server_info(broker.storage_url)
    header = machine.describe(REPO, version, "not used (aiohttp clients)", load)
    command = "python bench/reserve_ack.py " + shlex.join(argv)
    text = render(command, header, args, post, pairs)
    print("\n" + text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {"command": command, "machine": header, "rows": [asdict(post), asdict(pairs)]}
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
