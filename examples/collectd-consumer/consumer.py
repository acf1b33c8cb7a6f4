"""collectd consumer: stream what collectd sends to RestMQ and print the values and events.

    python consumer.py [--queue collectd_data --queue collectd_event] [--via sse|comet|ws]
                       [--count N]

The broker's collectd routes (``restmq collectd``, or ``restmq serve --collectd``) put each
``write_http`` POST in the queue ``collectd_data`` and each notification in
``collectd_event``. A data message is a JSON list of values, in one of two shapes:
``Format "Command"`` gives ``{"host", "plugin_instance", "type_instance", "interval",
"value": "<time>:<v1>[:<v2>...]"}``, ``Format "JSON"`` gives collectd's own objects
(``"values"``, ``"dsnames"``, ``"time"``...). An event is a list of one-key objects ending with
``{"event_text": ...}``. Both queues are followed at once; ``--count`` stops after N messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from typing import Any

from restmq.client import DEFAULT_SERVER, AsyncClient

QUEUES = ["collectd_data", "collectd_event"]


def describe(value: str) -> list[str]:
    """The lines to print for one message of either queue."""
    records: list[dict[str, Any]] = json.loads(value)
    if records and "event_text" in records[-1]:
        return [describe_event(records)]
    return [describe_json(r) if "values" in r else describe_command(r) for r in records]


def describe_command(record: dict[str, Any]) -> str:
    """A value of ``Format "Command"`` (PUTVAL): ``time:v1:v2...``."""
    when, *values = str(record["value"]).split(":")
    name = f"{record['plugin_instance']}/{record['type_instance']}"
    return (f"{record['host']} {name} = {', '.join(values)} at {when} "
            f"(every {record.get('interval', '?')} s)")


def describe_json(record: dict[str, Any]) -> str:
    """A value of ``Format "JSON"``: collectd's own object."""
    plugin = "-".join(p for p in (record["plugin"], record.get("plugin_instance")) if p)
    kind = "-".join(p for p in (record["type"], record.get("type_instance")) if p)
    names = record.get("dsnames") or [str(i) for i in range(len(record["values"]))]
    pairs = ", ".join(f"{n}={v}" for n, v in zip(names, record["values"], strict=False))
    return f"{record['host']} {plugin}/{kind} {pairs} at {record.get('time')}"


def describe_event(records: list[dict[str, Any]]) -> str:
    fields = {key: value for record in records for key, value in record.items()}
    return (f"EVENT {fields.get('severity', '?')} {fields.get('host', '?')}: "
            f"{fields['event_text']}")


class Countdown:
    """Counts the messages printed; ``done`` is set after ``limit`` (never when 0)."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.done = asyncio.Event()

    def tick(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


async def follow(client: AsyncClient, queue: str, via: str, countdown: Countdown) -> None:
    async with contextlib.aclosing(client.stream(queue, via=via)) as messages:
        async for message in messages:
            for line in describe(message.value):
                print(f"[{queue}] {line}", flush=True)
            countdown.tick()


async def run(args: argparse.Namespace) -> None:
    countdown = Countdown(args.count)
    async with AsyncClient(args.server) as client:
        tasks = [asyncio.create_task(follow(client, q, args.via, countdown)) for q in args.queue]
        stop = asyncio.create_task(countdown.done.wait())
        await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in [stop, *tasks]:
            task.cancel()
        await asyncio.gather(stop, *tasks, return_exceptions=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", action="append", help=f"repeatable [{' and '.join(QUEUES)}]")
    parser.add_argument("--via", choices=["sse", "comet", "ws"], default="sse")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages [never]")
    args = parser.parse_args(argv)
    args.queue = args.queue or QUEUES
    return args


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
