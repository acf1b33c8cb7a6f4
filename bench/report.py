"""The benchmark's report: one Markdown table per kind of figure, with its context on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from storage import StorageResult


@dataclass(frozen=True, slots=True)
class Row:
    """One endpoint at one worker count."""

    endpoint: str
    workers: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    vs_livez: float
    broker_cpu_us: float | None  # CPU time of the broker's processes per response
    cpu_vs_livez: float | None  # /livez's broker CPU per response over this row's
    storage_cpu_us: float | None  # the same for Redis (None when its process is not visible)
    requests: int
    unexpected: int  # responses whose status was not 200
    socket_errors: int


def us(value: float | None) -> str:
    """Microseconds, or n/a when unknown."""
    return "n/a" if value is None else f"{value:.0f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def render(
    command: str,
    machine: Mapping[str, str],
    setup: str,
    rows: Sequence[Row],
    storage: Sequence[StorageResult],
) -> str:
    """The whole report as Markdown."""
    parts = [
        "# RestMQ benchmark",
        f"Command: `{command}`",
        _machine_table(machine),
        setup,
        "## HTTP endpoints",
        _endpoint_table(rows),
        "## Storage baseline (redis-benchmark, same Redis)",
        _storage_table(storage),
    ]
    return "\n\n".join(parts) + "\n"


def _machine_table(machine: Mapping[str, str]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine.items()]
    return "\n".join(lines)


def _endpoint_table(rows: Sequence[Row]) -> str:
    lines = [
        "| endpoint | workers | req/s | p50 ms | p99 ms | vs /livez | broker CPU µs/req "
        "| vs /livez by CPU | Redis CPU µs/req | requests | non-200 | socket errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {r.endpoint} | {r.workers} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} "
        f"| {r.p99_ms:.2f} | {r.vs_livez:.0%} | {us(r.broker_cpu_us)} | {percent(r.cpu_vs_livez)} "
        f"| {us(r.storage_cpu_us)} "
        f"| {r.requests:,} | {r.unexpected:,} | {r.socket_errors:,} |"
        for r in rows
    ]
    return "\n".join(lines)


def _storage_table(results: Sequence[StorageResult]) -> str:
    if not results:
        return "(not measured)"
    lines = ["| command | pipeline (-P) | req/s | p50 ms |", "|---|--:|--:|--:|"]
    lines += [
        f"| {r.command} | {r.pipeline} | {r.requests_per_s:,.0f} "
        f"| {'' if r.p50_ms is None else f'{r.p50_ms:.3f}'} |"
        for r in results
    ]
    return "\n".join(lines)
