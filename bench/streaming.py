"""Streaming delivery benchmark (SPEC §3.4, §9): latency, fan-out throughput, idle connections.

    python bench/streaming.py

In one run, against real ``restmq serve`` processes (one worker each) sharing one Redis (the
machine's, under a random ``--prefix`` whose keys are deleted afterwards, or ``--embedded``):

1. delivery latency from the answer to ``POST /q/<queue>`` to the message at a waiting comet
   or SSE consumer, with the consumer on the same daemon as the producer and on another
   daemon (same Redis, same prefix), one message at a time and at a steady rate;
2. fan-out: deliveries per second to 100 and 1,000 broadcast comet consumers of one daemon;
3. 10,000 idle comet connections held by one fresh daemon: its memory per connection, its
   ``/livez`` and one broadcast to all of them.

The report is printed and written to bench/results/streaming.md (raw figures in
streaming.json beside it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import machine
import storage
import stream_latency as lat
import stream_load as load
import stream_report
import uvloop
from broker import REPO, Broker
from stream_crowd import raise_fd_limit

RESULTS = Path(__file__).resolve().parent / "results"
PLACEMENTS = ("same daemon", "other daemon")


@dataclass
class Figures:
    """Everything one run measured, and the load averages seen along the way."""

    storage: str = ""
    livez: tuple[float, float, float] = (float("nan"),) * 3
    latency: list[lat.Result] = field(default_factory=list)
    fanout: list[load.FanoutResult] = field(default_factory=list)
    idle: load.IdleResult | None = None
    load: dict[str, str] = field(default_factory=dict)
    slowlog_ms: float = float("nan")  # the Redis's slowlog-log-slower-than


async def latency_case(
    case: lat.Case, producer: Broker, consumer: Broker, messages: int
) -> lat.Result:
    queue = f"lat-{case.transport}-{case.placement.split()[0]}-{'steady' if case.rate else 'one'}"
    async with aiohttp.ClientSession() as posting, aiohttp.ClientSession() as reading:
        stream = await lat.open_stream(reading, consumer.base, queue, case.transport)
        try:
            post = lat.poster(posting, producer.base, queue)
            values = [str(i) for i in range(messages)]
            return await lat.measure(case, post, stream, values)
        finally:
            await stream.close()


async def latency_phase(
    args: argparse.Namespace, a: Broker, b: Broker
) -> tuple[tuple[float, float, float], list[lat.Result]]:
    async with aiohttp.ClientSession() as session:
        livez = await lat.livez_round_trip(session, a.base, 500)
    print(
        f"GET /livez through the client: p50 {livez[0]:.2f} ms, p99 {livez[1]:.2f} ms, "
        f"client CPU {livez[2]:.0f} µs/request"
    )
    results = []
    for transport in args.transports:
        for placement, consumer in zip(PLACEMENTS, (a, b), strict=True):
            for rate, count in ((None, args.messages), (args.rate, args.steady_messages)):
                case = lat.Case(transport, placement, rate)
                result = await latency_case(case, a, consumer, count)
                print(_latency_line(result), flush=True)
                results.append(result)
    return livez, results


def _latency_line(r: lat.Result) -> str:
    return (
        f"  {r.transport:<5} {r.placement:<12} {r.mode:<14} p50 {r.p50_ms:6.2f} ms"
        f"  p99 {r.p99_ms:6.2f} ms  max {r.max_ms:7.2f} ms  lost {r.lost}  early {r.early}"
        f"  client {r.client_cpu_us:.0f} µs/msg, lag p99 {r.loop_lag_p99_ms:.2f} ms"
    )


async def fanout_phase(
    args: argparse.Namespace, broker: Broker, names: dict[str, str]
) -> list[load.FanoutResult]:
    results = []
    for consumers in args.fanout:
        messages = max(1, args.fanout_deliveries // consumers)
        result = await load.fanout(broker, consumers, messages, args.crowds, args.timeout, names)
        print(
            f"  fan-out {consumers:>5} consumers x {messages} messages: "
            f"{result.deliveries_per_s:,.0f} deliveries/s in {result.seconds:.2f} s "
            f"(broker CPU {result.broker_cpu_percent:.0f} %, "
            f"clients {result.client_cpu_percent:.0f} %, closed early {result.closed_early})",
            flush=True,
        )
        results.append(result)
    return results


async def idle_phase(
    args: argparse.Namespace, broker: Broker, names: dict[str, str]
) -> load.IdleResult:
    result = await load.idle(broker, args.idle, args.idle_crowds, args.settle, args.timeout, names)
    broadcast = result.broadcast_seconds
    print(
        f"  idle: {result.connections:,} connections in {result.connect_seconds:.1f} s, "
        f"{result.kb_per_connection:.1f} KB each (VmRSS {result.rss_before_kb:,} → "
        f"{result.rss_after_kb:,} KB), /livez p50 {result.livez_p50_ms:.2f} ms, broadcast to "
        f"all in {'-' if broadcast is None else f'{broadcast:.2f}'} s, "
        f"closed early {result.closed_early}",
        flush=True,
    )
    return result


def _broker(args: argparse.Namespace, url: str | None, prefix: str | None = None) -> Broker:
    if prefix is None:
        return Broker(1, url, source=args.source)
    return Broker(1, url, source=args.source, prefix=prefix)


def run(args: argparse.Namespace) -> Figures:
    """Every phase, in order."""
    figures = Figures(load={"start": machine.load_average()})
    url = None if args.embedded else args.redis_url
    with _broker(args, url) as a:
        shared = a.storage_url
        figures.storage = storage.server_info(shared)[0]
        figures.slowlog_ms = load.slowlog_threshold_ms(shared)
        names = load.script_names(args.source)
        with _broker(args, shared, a.prefix) as b:
            print(f"daemons A {a.base} (pid {a.pid}), B {b.base} (pid {b.pid}), prefix {a.prefix}")
            figures.livez, figures.latency = uvloop.run(latency_phase(args, a, b))
        figures.load["after latency"] = machine.load_average()
        if args.fanout:
            figures.fanout = uvloop.run(fanout_phase(args, a, names))
            figures.load["after fan-out"] = machine.load_average()
        if args.idle:
            with _broker(args, shared, a.prefix) as c:
                print(f"fresh daemon C {c.base} (pid {c.pid}) for the idle connections")
                figures.idle = uvloop.run(idle_phase(args, c, names))
            figures.load["after idle"] = machine.load_average()
    return figures


def _setup(args: argparse.Namespace, fd_limit: int) -> str:
    where = "its embedded Valkey" if args.embedded else f"the Redis at {args.redis_url}"
    parts = [
        f"Daemons: `python -m restmq serve --workers 1` on {where}, one random `--prefix` "
        "shared by every daemon (keys deleted afterwards); A takes the POSTs, B (another "
        'process, same Redis and prefix) holds the consumers of the "other daemon" rows, '
        "and a fresh C holds the idle connections.",
        f"Latency: one client process (uvloop, aiohttp) is both producer and consumer; "
        f"{args.messages:,} messages one at a time (the next posted once the previous "
        f"arrived) and {args.steady_messages:,} at {args.rate:g}/s per row, after "
        f"{lat.WARMUP} warm-up messages.",
    ]
    if args.fanout:
        parts.append(
            f"Fan-out: broadcast comet consumers over {args.crowds} client processes, about "
            f"{args.fanout_deliveries:,} deliveries per row, after one warm-up message; the "
            f"messages are posted in batch adds of {load.POST_BATCH}."
        )
    if args.idle:
        parts.append(
            f"Idle: {args.idle:,} comet connections over {args.idle_crowds} client processes."
        )
    parts.append(
        f"RLIMIT_NOFILE {fd_limit:,} for the clients and the daemons (the machine's hard "
        "limit). Clients, daemons and Redis share the machine's cores."
    )
    return " ".join(parts)


def _header(args: argparse.Namespace, figures: Figures) -> dict[str, str]:
    header = machine.describe(
        args.source, figures.storage, "not used", figures.load["start"], args.label
    )
    del header["wrk"]
    header["load average (1/5/15 min) along the run"] = "; ".join(
        f"{when}: {value}" for when, value in figures.load.items()
    )
    return header


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--messages", type=int, default=3000, help="latency: messages one at a time per row")
    add("--steady-messages", type=int, default=2000, help="latency: messages at --rate per row")
    add("--rate", type=float, default=200.0, help="latency: the steady rate, messages/s")
    add("--transports", nargs="+", default=["comet", "sse"], choices=["comet", "sse"])
    add("--fanout", type=int, nargs="*", default=[100, 1000], help="consumer counts")
    add("--fanout-deliveries", type=int, default=200_000, help="messages x consumers per row")
    add("--crowds", type=int, default=2, help="client processes for the fan-out consumers")
    add("--idle", type=int, default=10_000, help="idle connections (0 skips)")
    add("--idle-crowds", type=int, default=4, help="client processes for the idle connections")
    add("--settle", type=float, default=3.0, help="seconds between connecting and measuring")
    add("--timeout", type=float, default=60.0, help="seconds to wait for any delivery")
    add("--redis-url", default="redis://127.0.0.1:6379/0")
    add("--embedded", action="store_true", help="the broker's own Valkey")
    add("--source", type=Path, default=REPO, help="the checkout whose restmq is run")
    add("--label", default=None, help="what is benchmarked (default: the source's commit)")
    add("--output", type=Path, default=RESULTS / "streaming.md")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    fd_limit = raise_fd_limit()
    figures = run(args)
    command = shlex.join(["python", "bench/streaming.py", *argv])
    header = _header(args, figures)
    text = stream_report.render(
        command,
        header,
        _setup(args, fd_limit),
        figures.livez,
        figures.latency,
        figures.fanout,
        figures.idle,
        figures.slowlog_ms,
    )
    print("\n" + text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {"command": command, "machine": header, **asdict(figures)}
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
