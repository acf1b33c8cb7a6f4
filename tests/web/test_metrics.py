"""``GET /metrics`` against real brokers: it parses with prometheus-client's own parser, its
counters move as requests, adds, takes, acks and stream deliveries happen, queue depths come
from Redis, and with ``--workers 2`` a scrape on either worker reports the sum of both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.broker import Broker
from tests.helpers.streams import start_reader
from tests.helpers.wait import async_wait_until, wait_until
from tests.http_support import BACKENDS, Served, serve_module

pytestmark = pytest.mark.asyncio(loop_scope="module")
Labels = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One broker per backend for the module (overrides the web conftest's Valkey-only one)."""
    with serve_module(request, tmp_path_factory) as served:
        yield served


class Scrape:
    """One parsed exposition: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, Labels], float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for (sample, labels) in self.samples
                if sample == name and label in dict(labels)}


async def _scrape(http: aiohttp.ClientSession, url: str) -> Scrape:
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return Scrape(await response.text())


async def _call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    """The decoded JSON answer (None for any other answer); never a 5xx."""
    async with http.request(method, url, **kw) as response:
        assert response.status < 500, await response.text()
        if response.content_type != "application/json":
            return None
        return await response.json()


def _queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_metrics_parse_and_declare_their_types(
    served: Served, http: aiohttp.ClientSession
) -> None:
    await _call(http, "POST", f"{served.broker.url}/q/{_queue('typed')}", data={"value": "v"})
    scrape = await _scrape(http, served.broker.url)
    assert scrape.types["restmq_http_requests"] == "counter"
    assert scrape.types["restmq_http_request_duration_seconds"] == "histogram"
    assert scrape.types["restmq_messages_in"] == "counter"
    assert scrape.types["restmq_queue_messages"] == "gauge"
    assert scrape.get("restmq_storage_up") == 1


async def test_adds_takes_and_acks_move_the_message_counters(
    served: Served, http: aiohttp.ClientSession
) -> None:
    base, queue = served.broker.url, _queue("counted")
    before = await _scrape(http, base)
    for value in ("a", "b", "c", "d"):
        await _call(http, "POST", f"{base}/q/{queue}", data={"value": value})
    for _ in range(2):
        await _call(http, "GET", f"{base}/q/{queue}")
    leased = await _call(http, "POST", f"{base}/q/{queue}/reserve")
    await _call(http, "POST", f"{base}/q/{queue}/ack",
                data={"key": leased["key"], "receipt": leased["receipt"]})
    await _call(http, "POST", f"{base}/queue", json={"cmd": "take", "queue": queue})
    await _call(http, "GET", f"{base}/q/{queue}")  # empty: 204
    after = await _scrape(http, base)

    assert after.get("restmq_messages_in_total", queue=queue) == 4
    assert after.get("restmq_messages_out_total", queue=queue, via="take") == 3
    assert after.get("restmq_messages_out_total", queue=queue, via="ack") == 1

    def moved(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before.get(name, **labels)

    route = {"method": "GET", "route": "/q/{queue}"}
    assert moved("restmq_http_requests_total", status="200", **route) == 2
    assert moved("restmq_http_requests_total", status="204", **route) == 1
    assert moved("restmq_http_request_duration_seconds_count", **route) == 3
    posts = {"method": "POST", "route": "/q/{queue}"}
    assert moved("restmq_http_requests_total", status="200", **posts) == 4


async def test_request_routes_are_templates_not_paths(
    served: Served, http: aiohttp.ClientSession
) -> None:
    base, queues = served.broker.url, [_queue("many") for _ in range(5)]
    for queue in queues:
        await _call(http, "GET", f"{base}/q/{queue}")
    await _call(http, "GET", f"{base}/no/such/{queues[0]}")
    await _call(http, "PROPFIND", f"{base}/q/{queues[0]}")  # 405, an unlisted method
    scrape = await _scrape(http, base)
    routes = scrape.label_values("restmq_http_requests_total", "route")
    assert not any(queue in route for route in routes for queue in queues)
    assert {"/q/{queue}", "(unmatched)"} <= routes
    assert scrape.get("restmq_http_requests_total", method="GET", route="(unmatched)",
                      status="404") >= 1
    assert scrape.get("restmq_http_requests_total", method="OTHER", route="(unmatched)",
                      status="405") >= 1


async def test_queue_depths_are_read_from_redis_at_scrape_time(
    served: Served, http: aiohttp.ClientSession
) -> None:
    base, queue = served.broker.url, _queue("deep")
    for value in ("a", "b", "c"):
        await _call(http, "POST", f"{base}/q/{queue}", data={"value": value})
    await _call(http, "POST", f"{base}/q/{queue}", data={"value": "later", "delay": "600"})
    await _call(http, "POST", f"{base}/q/{queue}/reserve")
    scrape = await _scrape(http, base)
    depth = {state: scrape.get("restmq_queue_messages", queue=queue, state=state)
             for state in ("waiting", "leased", "delayed", "dead")}
    assert depth == {"waiting": 2, "leased": 1, "delayed": 1, "dead": 0}
    assert scrape.get("restmq_queue_consumers", queue=queue) == 0
    assert scrape.get("restmq_queues") >= 1


@pytest.mark.parametrize(("policy", "transport"), [("broadcast", "sse"), ("roundrobin", "comet")])
async def test_stream_deliveries_count_out_and_feed_the_delivery_latency(
    policy: str, transport: str, served: Served, http: aiohttp.ClientSession,
    session: aiohttp.ClientSession,
) -> None:
    base, queue = served.broker.url, _queue(policy)
    await _call(http, "POST", f"{base}/p/{queue}", data={"policy": policy})
    before = await _scrape(http, base)
    reader = start_reader(session, base, transport, queue)
    try:
        async def consumers_seen() -> bool:
            return (await _scrape(http, base)).get("restmq_queue_consumers", queue=queue) == 1

        await async_wait_until(consumers_seen, 10, "the consumer in /metrics")
        for value in ("x", "y"):
            await _call(http, "POST", f"{base}/q/{queue}", data={"value": value})
        await reader.wait_for(2, timeout=10)

        async def counted() -> bool:
            scrape = await _scrape(http, base)
            return scrape.get("restmq_messages_out_total", queue=queue, via="stream") == 2

        await async_wait_until(counted, 10, "two stream deliveries counted")
    finally:
        await reader.stop()
    after = await _scrape(http, base)
    name = "restmq_delivery_latency_seconds_count"
    assert after.get(name, policy=policy) - before.get(name, policy=policy) == 2


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (each worker has its own, through SO_REUSEPORT)."""
    count = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                count += 1
    return count


@pytest.fixture
def two_workers(broker_factory: Callable[..., Broker]) -> Broker:
    broker = broker_factory("--workers", "2")
    wait_until(lambda: _listeners(broker.port) == 2, 30, "both workers listening")
    return broker


@pytest.mark.parametrize("backend", ["valkey"], indirect=True)
async def test_a_scrape_on_any_worker_sums_the_counters_of_all_workers(
    two_workers: Broker,
) -> None:
    queue, posts = _queue("summed"), 40
    # A fresh connection per request: the kernel spreads them over both workers' sockets.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as fresh:
        await asyncio.gather(*(
            _call(fresh, "POST", f"{two_workers.url}/q/{queue}", data={"value": str(i)})
            for i in range(posts)
        ))
        seen = [await _scrape(fresh, two_workers.url) for _ in range(10)]
    assert [s.get("restmq_messages_in_total", queue=queue) for s in seen] == [posts] * 10
    route = {"method": "POST", "route": "/q/{queue}", "status": "200"}
    assert all(s.get("restmq_http_requests_total", **route) == posts for s in seen)
