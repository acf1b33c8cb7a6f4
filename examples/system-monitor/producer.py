"""System monitor, producer: post this machine's readings (CPU, memory, disk, load) to a queue
every ``--interval`` seconds, for ``consumer.py`` to check.

    python producer.py [--interval 5] [--queue sysmon] [--count N] [--disk /]

Each reading is one JSON message:
``{"host", "time", "cpu", "memory", "disk", "load1", "load5", "load15", "cpus"}`` (percentages,
and the load averages). It is sent with a TTL of ten intervals: readings that nobody consumed
in time are dropped by the broker instead of piling up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from typing import Any

import psutil

from restmq.client import DEFAULT_SERVER, Client


def reading(disk: str) -> dict[str, Any]:
    load1, load5, load15 = psutil.getloadavg()
    return {
        "host": socket.gethostname(),
        "time": round(time.time(), 3),
        "cpu": psutil.cpu_percent(interval=None),  # since the previous call
        "memory": psutil.virtual_memory().percent,
        "disk": psutil.disk_usage(disk).percent,
        "load1": load1,
        "load5": load5,
        "load15": load15,
        "cpus": psutil.cpu_count() or 1,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", default="sysmon", help="where readings go [sysmon]")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds [5]")
    parser.add_argument("--count", type=int, default=0, help="stop after N readings [never]")
    parser.add_argument("--disk", default="/", help="the mount point to watch [/]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    psutil.cpu_percent(interval=None)  # the first call only starts the measure
    sent = 0
    next_at = time.monotonic()
    with Client(args.server) as client:
        while args.count == 0 or sent < args.count:
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
            value = reading(args.disk)
            key = client.add(args.queue, json.dumps(value), ttl=10 * args.interval)
            sent += 1
            print(f"{key}: cpu {value['cpu']}% memory {value['memory']}% "
                  f"disk {value['disk']}% load {value['load1']:.2f}", flush=True)


if __name__ == "__main__":
    main()
