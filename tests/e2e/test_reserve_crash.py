"""Workers that crash lose no message (SPEC §4, issue 4 item 2).

Ten worker processes reserve-and-ack 5,000 messages, each with a 2-second visibility timeout;
three of them (slow ones: a quarter of a second of work per message, so that a kill lands in
the work rather than in an ack already on its way) are killed with SIGKILL while they hold a
lease. After the visibility timeout
every message has been acknowledged exactly once (an ack answered 200) by some worker. The
messages delivered more than once are counted and shown; each redelivery carries a delivery
count above 1.

Each worker is a plain Python process (stdlib only, one keep-alive HTTP connection) that writes
one line per event to its own file with ``os.write``, so what it did before a SIGKILL is on
disk: ``R <key> <deliveries>`` when it got a lease, ``A <key> <status>`` when its ack returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until, wait_until

WORKERS = 10
VICTIMS = 3
MESSAGES = 5000
VISIBILITY = 2.0
FAST_WORK, SLOW_WORK = 0.002, 0.25  # seconds of work per message; the victims are slow
QUEUE = "crashjobs"

WORKER = r"""
import http.client, json, os, sys, time
from urllib.parse import urlencode

port, queue, out, stop, visibility, work = sys.argv[1:7]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
form = {"Content-Type": "application/x-www-form-urlencoded"}

def post(path, fields):
    conn.request("POST", path, urlencode(fields), form)
    response = conn.getresponse()
    return response.status, response.read()

while not os.path.exists(stop):
    status, body = post(f"/q/{queue}/reserve", {"timeout": visibility, "wait": "0.5"})
    if status == 204:
        continue
    assert status == 200, (status, body)
    lease = json.loads(body)
    os.write(fd, f"R {lease['key']} {lease['deliveries']}\n".encode())
    time.sleep(float(work))
    status, _ = post(f"/q/{queue}/ack", {"key": lease["key"], "receipt": lease["receipt"]})
    os.write(fd, f"A {lease['key']} {status}\n".encode())
"""


@dataclass
class Worker:
    number: int
    log: Path
    proc: subprocess.Popen[bytes]
    killed: bool = False
    read: int = 0  # bytes of the log already parsed
    last: list[str] = field(default_factory=list)  # the last event parsed

    def new_events(self) -> list[list[str]]:
        """The complete lines written since the last call."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(self.read)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.read += len(complete)
        events = [line.split() for line in complete.decode().splitlines() if line]
        if events:
            self.last = events[-1]
        return events

    def holds_a_lease(self) -> bool:
        """Its last event read is a lease not yet acknowledged: it is working on a message."""
        return bool(self.last) and self.last[0] == "R"


@dataclass
class Tally:
    """What the workers' logs say, message by message; updated as the logs grow."""

    workers: list[Worker]
    deliveries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    acks: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    def update(self) -> Tally:
        for worker in self.workers:
            for kind, key, value in worker.new_events():
                if kind == "R":
                    self.deliveries[key].append(int(value))
                elif value == "200":
                    self.acks[key] += 1
                else:
                    self.refused[key] += 1
        return self

    @property
    def in_flight_at_kill(self) -> set[str]:
        """The last lease of each killed worker: its ack may or may not have reached the
        broker before the kill."""
        return {w.last[1] for w in self.workers if w.killed and w.last and w.last[0] == "R"}


def _start_workers(broker: Broker, folder: Path, stop: Path) -> list[Worker]:
    workers = []
    for number in range(WORKERS):
        log = folder / f"worker-{number}.log"
        work = SLOW_WORK if number < VICTIMS else FAST_WORK
        args = [str(broker.port), QUEUE, str(log), str(stop), str(VISIBILITY), str(work)]
        proc = subprocess.Popen([sys.executable, "-c", WORKER, *args])
        workers.append(Worker(number, log, proc))
    return workers


def _working(worker: Worker, tally: Tally) -> Callable[[], bool]:
    def check() -> bool:
        tally.update()
        return worker.holds_a_lease()

    return check


def _kill_mid_work(victims: list[Worker], tally: Tally) -> None:
    for worker in victims:
        wait_until(_working(worker, tally), 20, f"worker {worker.number} holds a lease")
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        worker.killed = True
        tally.update()  # what it wrote before it died


async def _produce(session: aiohttp.ClientSession, url: str) -> list[str]:
    keys: list[str] = []
    for start in range(0, MESSAGES, 1000):
        values = [f"job-{n}" for n in range(start, start + 1000)]
        async with session.post(f"{url}/q/{QUEUE}", json={"values": values}) as response:
            assert response.status == 200, await response.text()
            keys += (await response.json())["keys"]
    return keys


async def _counts(session: aiohttp.ClientSession, url: str) -> tuple[int, int, int]:
    async with session.get(f"{url}/stats/{QUEUE}") as response:
        stats = await response.json()
        return stats["len"], stats["leased"], stats["delayed"]


async def test_killing_three_of_ten_workers_mid_work_loses_no_message_and_acks_each_once(
    broker: Broker, raw_redis: Redis, backend: Backend, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    async with aiohttp.ClientSession() as session:
        sent = await _produce(session, broker.url)
        started = time.monotonic()
        workers = _start_workers(broker, tmp_path, stop)
        tally = Tally(workers)
        try:
            wait_until(
                lambda: sum(tally.update().acks.values()) >= MESSAGES // 5,
                30,
                "the workers are well under way",
            )
            _kill_mid_work(workers[:VICTIMS], tally)
            killed_at = time.monotonic()

            async def all_done() -> bool:
                if await _counts(session, broker.url) != (0, 0, 0):
                    return False
                settled = set(tally.update().acks) | tally.in_flight_at_kill
                return settled >= set(sent)

            await async_wait_until(all_done, 40, "every message acknowledged")
            finished = time.monotonic()
        finally:
            stop.touch()
            for worker in workers:
                if worker.proc.poll() is None:
                    try:
                        worker.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        worker.proc.kill()
                        worker.proc.wait()
        survivors_exit = [w.proc.returncode for w in workers[VICTIMS:]]

    tally.update()
    redelivered = {k: d for k, d in tally.deliveries.items() if len(d) > 1}
    print(
        f"\n{MESSAGES} messages, {WORKERS} workers, {VICTIMS} killed after "
        f"{killed_at - started:.1f} s; all acknowledged after {finished - started:.1f} s; "
        f"{len(redelivered)} delivered more than once: "
        + ", ".join(f"{k} {d}" for k, d in sorted(redelivered.items()))
        + f"; in flight at the kills: {sorted(tally.in_flight_at_kill)}; "
        f"acks refused (409, lease lost): {sum(tally.refused.values())}"
    )
    assert survivors_exit == [0] * (WORKERS - VICTIMS)
    assert set(tally.deliveries) <= set(sent)
    assert [k for k, n in tally.acks.items() if n > 1] == [], "a message was acknowledged twice"
    unacked = set(sent) - set(tally.acks)
    # Only a victim's last message may lack a recorded 200: its ack was cut by the kill, and
    # then it reached the broker (the message is gone) — it was never redelivered.
    assert unacked <= tally.in_flight_at_kill, sorted(unacked)[:10]
    for key in unacked:
        assert tally.deliveries[key] == [1], (key, tally.deliveries[key])
    for key, seen in redelivered.items():
        assert max(seen) > 1 and len(set(seen)) == len(seen), (key, seen)
    # The victims were killed holding leases: those messages came back with a count above 1.
    assert any(max(seen) > 1 for seen in tally.deliveries.values())
    assert {r for r in tally.refused.elements()} <= set(redelivered)
    await assert_no_orphans(raw_redis, backend.prefix)
