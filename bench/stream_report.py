"""The streaming benchmark's Markdown report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream_latency import Result
from stream_load import FanoutResult, IdleResult, SlowCalls

P50_TARGET_MS = 2.0
P99_TARGET_MS = 20.0
KB_TARGET = 20.0


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _mark(ok: bool) -> str:
    return "" if ok else " ✗"


def latency_table(rows: Sequence[Result]) -> str:
    lines = [
        "| transport | consumer on | mode | messages | p50 ms | p99 ms | max ms | lost | early "
        "| POST p50 ms | client CPU µs/msg | client loop lag p99 ms |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {r.transport} | {r.placement} | {r.mode} | {r.messages:,} "
        f"| {_ms(r.p50_ms)}{_mark(r.p50_ms <= P50_TARGET_MS)} "
        f"| {_ms(r.p99_ms)}{_mark(r.p99_ms <= P99_TARGET_MS)} | {_ms(r.max_ms)} | {r.lost} "
        f"| {r.early} | {_ms(r.post_p50_ms)} | {r.client_cpu_us:.0f} | {_ms(r.loop_lag_p99_ms)} |"
        for r in rows
    ]
    return "\n".join(lines)


def slow_text(slow: Sequence[SlowCalls]) -> str:
    """``claim 12 (max 31.0 ms), presence 3 (max 12.5 ms)``, or ``none``."""
    if not slow:
        return "none"
    return ", ".join(f"{c.script} {c.calls} (max {c.max_ms:.1f} ms)" for c in slow)


def fanout_table(rows: Sequence[FanoutResult]) -> str:
    lines = [
        "| consumers | messages | deliveries | seconds | deliveries/s | posting s "
        "| broker CPU % | broker CPU µs/delivery | Redis CPU % | client CPU % | closed early "
        "| slow Redis calls |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        rate = f"**{r.deliveries_per_s:,.0f}**" if r.complete else "incomplete"
        redis = "n/a" if r.redis_cpu_percent is None else f"{r.redis_cpu_percent:.0f}"
        lines.append(
            f"| {r.consumers:,} | {r.messages:,} | {r.deliveries:,} | {r.seconds:.2f} | {rate} "
            f"| {r.post_seconds:.2f} | {r.broker_cpu_percent:.0f} "
            f"| {r.broker_cpu_us_per_delivery:.1f} | {redis} | {r.client_cpu_percent:.0f} "
            f"| {r.closed_early} | {slow_text(r.slow)} |"
        )
    return "\n".join(lines)


def idle_table(r: IdleResult) -> str:
    broadcast = "not all reached" if r.broadcast_seconds is None else f"{r.broadcast_seconds:.2f}"
    rows = {
        "connections held (failed)": f"{r.connections:,} ({r.failed})",
        "time to connect them all": f"{r.connect_seconds:.1f} s",
        "Redis CPU meanwhile": "n/a"
        if r.redis_cpu_connect_s is None
        else f"{r.redis_cpu_connect_s:.1f} s",
        "consumers counted by /stats": "n/a"
        if r.consumers_in_stats is None
        else f"{r.consumers_in_stats:,}",
        "daemon VmRSS before": f"{r.rss_before_kb:,} KB",
        "daemon VmRSS holding them": f"{r.rss_after_kb:,} KB",
        "**memory per connection**": f"**{r.kb_per_connection:.1f} KB**"
        f"{_mark(r.kb_per_connection <= KB_TARGET)} (target ≤ {KB_TARGET:g} KB)",
        "daemon VmRSS after they closed": f"{r.rss_closed_kb:,} KB",
        "daemon open fds holding them": f"{r.fds_after:,}",
        "daemon CPU while idle, % of one core (heartbeats)": f"{r.broker_cpu_percent_idle:.1f} %",
        "GET /livez meanwhile, p50 / p99": f"{_ms(r.livez_p50_ms)} / {_ms(r.livez_p99_ms)} ms",
        "one broadcast message reached all of them in": f"{broadcast} s",
        "streams closed early": str(r.closed_early),
        "slow Redis calls on the queue": slow_text(r.slow),
    }
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows.items()]
    return "\n".join(lines)


def render(
    command: str,
    header: Mapping[str, str],
    setup: str,
    livez: tuple[float, float, float],
    latency: Sequence[Result],
    fanout: Sequence[FanoutResult],
    idle: IdleResult | None,
    slowlog_ms: float,
) -> str:
    parts = [
        "# RestMQ streaming benchmark",
        f"Command: `{command}`",
        "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in header.items())]),
        setup,
        "## Delivery latency (POST answered → message at a waiting consumer)",
        f"Targets: p50 ≤ {P50_TARGET_MS:g} ms, p99 ≤ {P99_TARGET_MS:g} ms (✗ marks a miss). "
        f"The client's floor, `GET /livez` one at a time through the same client: p50 "
        f"{_ms(livez[0])} ms, p99 {_ms(livez[1])} ms, client CPU {livez[2]:.0f} µs per request. "
        "Early: arrived before the POST's answer was read (counted as 0 ms). Client CPU per "
        "message: the producer, the consumer and the timing, together.",
        latency_table(latency),
        "## Fan-out throughput (broadcast, comet consumers on one daemon)",
        "CPU % is of one core over the measured time; client CPU sums the client processes. "
        f"Slow Redis calls: the script calls on the queue's keys that took over {slowlog_ms:g} "
        "ms in Redis (its SLOWLOG, which keeps the last 128 slow commands: counts are lower "
        "bounds; a command name is one run inside a script; durations are wall time, longer "
        "when the machine deschedules Redis); Redis serves nothing else while one runs.",
        fanout_table(fanout) if fanout else "(not measured)",
        "## Idle streaming connections on one daemon",
        idle_table(idle) if idle else "(not measured)",
    ]
    return "\n\n".join(parts) + "\n"
