"""``restmq migrate-v1``: a RestMQ 1.x database, built here in the SPEC appendix's layout on a
Valkey of its own, is moved by the real command into the backend, and a real broker then
serves the moved queues as 1.x did (order, values, TTLs, soft-get counts, policy, status).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend, valkey_binary
from tests.helpers.broker import Broker, make_broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.streams import key_number, start_reader
from tests.helpers.wait import async_wait_until, wait_until


@pytest.fixture
def v1_url(tmp_path: Path) -> Iterator[str]:
    """An empty Valkey of its own, on a unix socket: the 1.x database (unprefixed keys)."""
    sock = tmp_path / "v1.sock"
    proc = subprocess.Popen(
        [valkey_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path),
         "--save", "", "--appendonly", "no", "--logfile", str(tmp_path / "v1.log")],
    )
    wait_until(sock.exists, 10, "the 1.x valkey's socket")
    wait_until(lambda: _pings(f"unix://{sock}"), 10, "the 1.x valkey answers")
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(10)


def _pings(url: str) -> bool:
    try:
        with redis.Redis.from_url(url) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def v1(v1_url: str) -> Iterator[V1]:
    with redis.Redis.from_url(v1_url) as client:
        yield V1(client)


class V1:
    """Writes a database the way RestMQ 1.x did (SPEC appendix)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def add(self, queue: str, value: str | bytes, ttl_ms: int | None = None) -> int:
        n = int(self.r.incr(f"{queue}:UUID"))
        self.r.set(f"{queue}:{n}", value, px=ttl_ms)
        self.r.lpush(f"{queue}:queue", f"{queue}:{n}")
        self.r.sadd("QUEUESET", queue)
        return n

    def take(self, queue: str) -> None:
        """1.x's take: the key leaves the list, the value stays behind (leaked)."""
        self.r.rpop(f"{queue}:queue")

    def soft_get(self, queue: str, n: int, times: int) -> None:
        self.r.incrby(f"{queue}:{n}:refcount", times)

    def expire_value(self, queue: str, n: int) -> None:
        """An expired value: the id is still listed, the value is gone."""
        self.r.delete(f"{queue}:{n}")

    def control(self, queue: str, status: str | None = None, policy: str | None = None) -> None:
        self.r.sadd("QUEUESET", queue)
        if status is not None:
            self.r.set(f"queuestat::{queue}", status)
        if policy is not None:
            self.r.set(f"{queue}:queuepolicy", policy)


SHORT_TTL = 8_000  # ms: long enough to be moved, short enough to run out during the test


def _build(v1: V1) -> None:
    """greetings: 1 taken in 1.x, 2 soft-got twice, 4 expired, 5 and 6 with TTLs, 8 not text;
    jobs: stopped, roundrobin, four messages; idle: stopped, no message; a/b and a name that is
    not UTF-8: names the new broker refuses."""
    for value in ["taken", "hello", "007", "expired", "long ttl"]:
        v1.add("greetings", value, ttl_ms=60_000 if value == "long ttl" else None)
    v1.add("greetings", "short ttl", ttl_ms=SHORT_TTL)
    v1.add("greetings", "ümlaut ✓")
    v1.add("greetings", b"\xff\xfe not utf-8")
    v1.take("greetings")
    v1.soft_get("greetings", 2, 2)
    v1.expire_value("greetings", 4)
    for value in ["j1", "j2", "j3", "j4"]:
        v1.add("jobs", value)
    v1.control("jobs", status="0", policy="2")
    v1.control("idle", status="0")
    v1.add("a/b", "refused")
    v1.r.sadd("QUEUESET", b"\xffbytes")


def migrate(source: str, *target: str) -> dict[str, Any]:
    """Run the real command; returns its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "restmq", "migrate-v1", "--from", source, *target, "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _target(backend: Backend) -> tuple[str, ...]:
    return ("--redis-url", backend.url, "--prefix", backend.prefix)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as response:
        assert response.status == 200, await response.text()
        return await response.json(content_type=None)


async def _take(session: aiohttp.ClientSession, broker: Broker, queue: str) -> tuple[str, str]:
    message = await _json(session, "GET", f"{broker.url}/q/{queue}")
    return message["key"], message["value"]


async def _post(session: aiohttp.ClientSession, broker: Broker, queue: str, value: str) -> str:
    async with session.post(f"{broker.url}/q/{queue}", data={"value": value}) as response:
        assert response.status == 200
        return (await response.text()).strip()


async def _status(session: aiohttp.ClientSession, broker: Broker, queue: str) -> int:
    body = await _json(session, "GET", f"{broker.url}/control/{queue}")
    return int(body["status"]["status"])


async def _length(session: aiohttp.ClientSession, broker: Broker, queue: str) -> int:
    return int((await _json(session, "GET", f"{broker.url}/stats/{queue}"))["len"])


def test_the_report_counts_what_was_moved_and_what_was_skipped(
    v1: V1, v1_url: str, backend: Backend
) -> None:
    _build(v1)
    report = migrate(v1_url, *_target(backend))
    totals = report["totals"]
    assert totals == {"queues": 3, "new_queues": 3, "moved": 9, "renumbered": 0, "already": 0,
                      "expired": 1, "not_text": 1, "with_ttl": 2}
    by_name = {q["queue"]: q for q in report["queues"]}
    assert by_name["jobs"]["policy"] == "roundrobin" and by_name["jobs"]["status"] == "stopped"
    assert by_name["idle"]["moved"] == 0 and by_name["idle"]["status"] == "stopped"
    assert sorted(report["skipped"]) == ["a/b", "\ufffdbytes"]
    assert "/" in report["skipped"]["a/b"]
    assert "UTF-8" in report["skipped"]["\ufffdbytes"]


async def test_moved_queues_keep_order_keys_values_ttls_and_soft_get_counts(
    v1: V1, v1_url: str, backend: Backend, broker_factory: Callable[..., Broker],
    session: aiohttp.ClientSession, raw_redis: Redis,
) -> None:
    _build(v1)
    migrate(v1_url, *_target(backend))
    broker = broker_factory()
    soft = await _json(session, "POST", f"{broker.url}/queue",
                       json={"cmd": "get", "queue": "greetings"})
    assert (soft["key"], soft["value"], soft["count"]) == ("greetings:2", "hello", 3)
    exp_key = Keys(backend.prefix).queue_key("greetings", "exp")
    now = time.time() * 1000
    assert 50_000 < await raw_redis.zscore(exp_key, "5") - now <= 60_000
    short = await raw_redis.zscore(exp_key, "6")  # None when it already ran out (slow host)
    assert short is None or short - now <= SHORT_TTL
    await async_wait_until(
        lambda: _length_is(session, broker, "greetings", 4), 15, "the short TTL ran out"
    )
    taken = [await _take(session, broker, "greetings") for _ in range(4)]
    assert taken == [("greetings:2", "hello"), ("greetings:3", "007"),
                     ("greetings:5", "long ttl"), ("greetings:7", "ümlaut ✓")]
    assert await _post(session, broker, "greetings", "new") == "greetings:9"
    await assert_no_orphans(raw_redis, backend.prefix)


async def _length_is(
    session: aiohttp.ClientSession, broker: Broker, queue: str, length: int
) -> bool:
    return await _length(session, broker, queue) == length


async def test_a_stopped_roundrobin_queue_stays_stopped_then_rotates_its_backlog(
    v1: V1, v1_url: str, backend: Backend, broker_factory: Callable[..., Broker],
    session: aiohttp.ClientSession, raw_redis: Redis,
) -> None:
    _build(v1)
    migrate(v1_url, *_target(backend))
    broker = broker_factory()
    assert (await _json(session, "GET", f"{broker.url}/p/jobs"))["value"] == "roundrobin"
    await _post(session, broker, "jobs", "j5")
    await _post(session, broker, "idle", "first")
    assert await _status(session, broker, "jobs") == 0
    assert await _status(session, broker, "idle") == 0
    readers = [start_reader(session, broker.url, "comet", "jobs", f"c{i}") for i in range(2)]
    await async_wait_until(lambda: _consumers_are(session, broker, "jobs", 2), 10, "2 consumers")
    assert await _length(session, broker, "jobs") == 5  # stopped: nothing left the queue
    await _json(session, "POST", f"{broker.url}/control/jobs", data={"status": "start"})
    await async_wait_until(lambda: sum(len(r.received) for r in readers) == 5, 10, "5 messages")
    received = sorted((key for r in readers for key in r.keys), key=key_number)
    assert received == [f"jobs:{n}" for n in range(1, 6)]
    assert all(len(r.received) >= 2 for r in readers)  # rotated over both consumers
    for reader in readers:
        assert reader.keys == sorted(reader.keys, key=key_number)
        await reader.stop()
    await assert_no_orphans(raw_redis, backend.prefix)


async def _consumers_are(
    session: aiohttp.ClientSession, broker: Broker, queue: str, count: int
) -> bool:
    stats = await _json(session, "GET", f"{broker.url}/stats/{queue}")
    return int(stats["consumers"]) == count


async def test_a_second_run_moves_nothing_twice_and_a_third_moves_only_what_1x_got_since(
    v1: V1, v1_url: str, backend: Backend, broker_factory: Callable[..., Broker],
    session: aiohttp.ClientSession, raw_redis: Redis,
) -> None:
    _build(v1)
    migrate(v1_url, *_target(backend))
    broker = broker_factory()
    await _json(session, "POST", f"{broker.url}/control/jobs", data={"status": "start"})
    assert await _post(session, broker, "greetings", "new") == "greetings:9"

    again = migrate(v1_url, *_target(backend))["totals"]
    assert again["moved"] == 0 and again["new_queues"] == 0 and again["expired"] == 0
    assert again["already"] == 7 + 4  # greetings:2..8 and jobs:1..4 were looked at before
    assert await _status(session, broker, "jobs") == 1  # a re-run does not undo a change
    assert await _length(session, broker, "greetings") == 6

    v1.add("greetings", "late")  # 1.x numbers it 9, which the new broker already used
    third = migrate(v1_url, *_target(backend))["totals"]
    assert (third["moved"], third["renumbered"]) == (1, 1)
    keys = [(await _take(session, broker, "greetings"))[0] for _ in range(7)]
    assert keys[-2:] == ["greetings:9", "greetings:10"]
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_batches_keep_the_order_of_a_long_queue(
    v1: V1, v1_url: str, backend: Backend, broker_factory: Callable[..., Broker],
    session: aiohttp.ClientSession, raw_redis: Redis,
) -> None:
    for i in range(1, 101):
        v1.add("long", f"m{i}")
    for i in range(10, 101, 10):
        v1.expire_value("long", i)
    report = migrate(v1_url, *_target(backend), "--batch", "7")
    assert (report["totals"]["moved"], report["totals"]["expired"]) == (90, 10)
    broker = broker_factory()
    taken = await _json(session, "GET", f"{broker.url}/q/long?count=1000")
    keys = [m["key"] for m in taken["messages"]]
    assert keys == [f"long:{i}" for i in range(1, 101) if i % 10]
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_without_a_redis_url_it_fills_the_embedded_valkey_of_the_data_dir(
    v1: V1, v1_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    v1.add("q", "from 1.x")
    data = tmp_path / "data"
    report = migrate(v1_url, "--data-dir", str(data))
    assert report["totals"]["moved"] == 1
    broker = make_broker(tmp_path, None, "restmq:", ["--data-dir", str(data)]).start()
    try:
        assert await _take(session, broker, "q") == ("q:1", "from 1.x")
        v1.add("q", "later")
        assert migrate(v1_url, "--data-dir", str(data))["totals"]["moved"] == 1  # its socket
        assert await _take(session, broker, "q") == ("q:2", "later")
    finally:
        broker.stop()
