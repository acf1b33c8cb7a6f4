"""System monitor, consumer: stream the readings of ``producer.py`` and print an alarm for each
value above its threshold.

    python consumer.py [--queue sysmon] [--cpu 90] [--memory 90] [--disk 90] [--load 2]
                       [--via sse|comet|ws] [--count N]

Thresholds are percentages, except ``--load``: the one-minute load average per CPU. Each
reading prints one line; each value over its threshold prints an ``ALARM`` line after it.
With several consumers, set the queue to roundrobin to share the readings out, or keep the
default broadcast for every consumer to see them all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from restmq.client import DEFAULT_SERVER, Client

# What each threshold is compared with, and how it is named in an alarm.
CHECKS: dict[str, tuple[str, Callable[[dict[str, Any]], float]]] = {
    "cpu": ("CPU use %", lambda r: float(r["cpu"])),
    "memory": ("memory use %", lambda r: float(r["memory"])),
    "disk": ("disk use %", lambda r: float(r["disk"])),
    "load": ("load per CPU", lambda r: float(r["load1"]) / max(1, int(r["cpus"]))),
}


def alarms(reading: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """One message per value over its threshold."""
    found = []
    for name, limit in thresholds.items():
        label, measure = CHECKS[name]
        value = measure(reading)
        if value > limit:
            found.append(f"ALARM {reading['host']}: {label} {value:.2f} > {limit:g}")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", default="sysmon", help="readings to check [sysmon]")
    parser.add_argument("--via", choices=["sse", "comet", "ws"], default="sse")
    parser.add_argument("--count", type=int, default=0, help="stop after N readings [never]")
    parser.add_argument("--cpu", type=float, default=90.0, help="%% [90]")
    parser.add_argument("--memory", type=float, default=90.0, help="%% [90]")
    parser.add_argument("--disk", type=float, default=90.0, help="%% [90]")
    parser.add_argument("--load", type=float, default=2.0, help="per CPU [2]")
    return parser.parse_args(argv)


def watch(client: Client, args: argparse.Namespace) -> None:
    thresholds = {name: getattr(args, name) for name in CHECKS}
    seen = 0
    with contextlib.closing(client.stream(args.queue, via=args.via)) as messages:
        for message in messages:
            reading = json.loads(message.value)
            seen += 1
            print(f"{message.key} {reading['host']}: cpu {reading['cpu']}% "
                  f"memory {reading['memory']}% disk {reading['disk']}% "
                  f"load {reading['load1']:.2f}", flush=True)
            for alarm in alarms(reading, thresholds):
                print(alarm, flush=True)
            if seen == args.count:
                return


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with Client(args.server) as client, contextlib.suppress(KeyboardInterrupt):
        watch(client, args)


if __name__ == "__main__":
    main()
