"""Delayed messages (SPEC §4, issue 4 item 4): messages delayed by 1-3 s appear in the order
of their due time and never before it, and they survive a SIGKILL of the broker and of its
embedded Valkey followed by a restart.

A consumer takes them with long polls (``GET /q/<queue>?wait=``) and notes when each one
arrived, relative to when the POST that delayed it was sent.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.e2e.test_durability import _embedded_broker, _valkey_pids
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import wait_until

QUEUE = "later"
# (value, delay in seconds), sent in this order: not the order they are due in.
DELAYED = [("d3.0", 3.0), ("d1.0", 1.0), ("d2.0", 2.0), ("d1.5", 1.5), ("d2.5", 2.5)]
EARLY_TOLERANCE = 0.005  # clock granularity between this process and Redis's TIME
LATE_TOLERANCE = 1.0  # the sweeper runs every 0.1 s; a loaded machine adds its share


async def _send(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """POST every delayed message; returns each value's earliest allowed arrival time."""
    due = {}
    for value, delay in DELAYED:
        sent_at = time.monotonic()
        async with session.post(
            f"{url}/q/{QUEUE}", data={"value": value, "delay": str(delay)}
        ) as response:
            assert response.status == 200, await response.text()
        due[value] = sent_at + delay
    return due


async def _receive(
    session: aiohttp.ClientSession, url: str, count: int, timeout: float = 20
) -> list[tuple[str, float]]:
    """Long-poll until ``count`` messages arrived; (value, arrival time) in arrival order."""
    got: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {got} arrived"
        async with session.get(f"{url}/q/{QUEUE}?wait=5") as response:
            if response.status == 200:
                got.append(((await response.json())["value"], time.monotonic()))
            else:
                assert response.status == 204, await response.text()
    return got


def _assert_on_time(
    got: list[tuple[str, float]], due: dict[str, float], back_at: float = 0.0
) -> None:
    """In order of due time, none before its time, none much after it — or, for those that
    fell due while the broker was down, much after it came back (``back_at``)."""
    assert [value for value, _ in got] == sorted(due, key=due.__getitem__)
    for value, arrived in got:
        assert arrived >= due[value] - EARLY_TOLERANCE, (value, due[value] - arrived)
        assert arrived <= max(due[value], back_at) + LATE_TOLERANCE, (value, arrived - due[value])


async def test_delayed_messages_appear_in_order_of_due_time_and_not_before(
    broker: Broker, raw_redis: Redis, backend: Backend
) -> None:
    async with aiohttp.ClientSession() as session:
        due = await _send(session, broker.url)
        async with session.get(f"{broker.url}/stats/{QUEUE}") as response:
            stats = await response.json()
        got = await _receive(session, broker.url, len(DELAYED))

    assert (stats["len"], stats["delayed"]) == (0, len(DELAYED))
    _assert_on_time(got, due)
    await assert_no_orphans(raw_redis, backend.prefix)


def _aof_holds(data_dir: Path, values: list[str]) -> bool:
    """Every value is in the embedded Valkey's append-only files (fsynced every second)."""
    data = b"".join(path.read_bytes() for path in data_dir.rglob("*.aof"))
    return all(value.encode() in data for value in values)


def _kill_broker_and_valkey(broker: Broker, data_dir: Path) -> None:
    pids = _valkey_pids(data_dir)
    assert len(pids) == 1, pids
    broker.kill()
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: not _valkey_pids(data_dir), 10, "the embedded Valkey is gone")


async def test_delayed_messages_survive_a_sigkill_of_the_broker_and_its_valkey(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    broker = _embedded_broker(tmp_path, data_dir).start()
    try:
        async with aiohttp.ClientSession() as session:
            due = await _send(session, broker.url)
        wait_until(lambda: _aof_holds(data_dir, list(due)), 5, "the delayed messages on disk")
        _kill_broker_and_valkey(broker, data_dir)
        killed_at = time.monotonic()
    finally:
        broker.kill()
    assert killed_at < max(due.values()), "no message was still delayed at the kill"

    restarted = _embedded_broker(tmp_path, data_dir).start()
    back_at = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            got = await _receive(session, restarted.url, len(DELAYED))
        pending = [value for value, at in due.items() if at > back_at]
        print(f"\nback {back_at - killed_at:.2f} s after the kill; still pending: {pending}")
        _assert_on_time(got, due, back_at)
        valkey = Redis(unix_socket_path=str(data_dir / "valkey.sock"), decode_responses=True)
        try:
            await assert_no_orphans(valkey, "restmq:")
        finally:
            await valkey.aclose()
    finally:
        assert restarted.stop() == 0
