"""Durability with the embedded Valkey (SPEC §1, §2): a SIGKILL of the broker and of its
Valkey loses no message accepted more than one second before the kill."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.helpers.broker import Broker, free_port


def _valkey_pids(data_dir: Path) -> list[int]:
    """The valkey-server processes serving ``data_dir`` (found through /proc)."""
    socket_path = str(data_dir / "valkey.sock")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # Valkey retitles itself "valkey-server unixsocket:<path>".
        title = b" ".join(cmdline)
        if b"valkey-server" in title and socket_path.encode() in title:
            pids.append(int(entry.name))
    return pids


def _embedded_broker(tmp_path: Path, data_dir: Path) -> Broker:
    port = free_port()
    args = ["--data-dir", str(data_dir)]
    return Broker(args=args, port=port, log_path=tmp_path / f"broker-{port}.log")


async def _produce(url: str, accepted: list[tuple[float, str]], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session:
        i = 0
        while not stop.is_set():
            try:
                async with session.post(f"{url}/q/durable", data={"value": f"d{i}"}) as r:
                    if r.status == 200:
                        accepted.append((time.monotonic(), (await r.text()).strip()))
            except aiohttp.ClientError:
                return  # the broker is gone
            i += 1


async def _drain(url: str) -> set[str]:
    keys = set()
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{url}/q/durable") as response:
                if response.status == 204:
                    return keys
                assert response.status == 200
                keys.add((await response.json())["key"])


async def test_messages_survive_a_sigkill_of_the_broker_and_its_valkey(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    broker = _embedded_broker(tmp_path, data_dir).start()
    accepted: list[tuple[float, str]] = []
    stop = asyncio.Event()
    producer = asyncio.create_task(_produce(broker.url, accepted, stop))
    try:
        deadline = time.monotonic() + 20
        while not accepted or accepted[-1][0] - accepted[0][0] < 2.5:
            assert time.monotonic() < deadline, "the producer stalled"
            await asyncio.sleep(0.05)  # let the producer run for 2.5 s of accepted writes
        pids = _valkey_pids(data_dir)
        assert len(pids) == 1, pids
        killed_at = time.monotonic()
        broker.kill()
        os.kill(pids[0], signal.SIGKILL)
        stop.set()
        await producer
    finally:
        broker.kill()
    must_survive = {key for at, key in accepted if at < killed_at - 1.0}
    assert len(must_survive) > 100
    restarted = _embedded_broker(tmp_path, data_dir).start()
    try:
        survivors = await _drain(restarted.url)
    finally:
        assert restarted.stop() == 0
    assert must_survive <= survivors, sorted(must_survive - survivors)[:10]


async def test_a_dead_valkey_means_503_then_the_broker_restarts_it_and_carries_on(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    broker = _embedded_broker(tmp_path, data_dir).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{broker.url}/q/phoenix", data={"value": "before"}) as r:
                assert r.status == 200
            await asyncio.sleep(1.1)  # SPEC §2: the one-second fsync window of the AOF
            (pid,) = _valkey_pids(data_dir)
            os.kill(pid, signal.SIGKILL)
            statuses = []
            deadline = time.monotonic() + 20
            while True:  # every answer meanwhile is a 503 with Retry-After, then it recovers
                async with session.get(f"{broker.url}/stats/phoenix") as r:
                    statuses.append(r.status)
                    if r.status == 503:
                        assert r.headers["Retry-After"]
                        assert (await r.json())["error"] == "storage unavailable"
                    elif r.status == 200:
                        break
                assert time.monotonic() < deadline, statuses
            assert set(statuses) <= {200, 503}
            assert _valkey_pids(data_dir) and _valkey_pids(data_dir) != [pid]
            async with session.get(f"{broker.url}/q/phoenix") as r:
                assert (await r.json())["value"] == "before"
    finally:
        assert broker.stop() == 0
    # The supervisor logs one line per change of state, however long Valkey was down.
    supervisor_lines = [line for line in broker.log_path.read_text().splitlines()
                        if "restmq.valkey:" in line]  # fmt: skip
    for state in ("is down", "restarted", "answers again"):
        assert sum(state in line for line in supervisor_lines) == 1, supervisor_lines
