"""100,000 queues (issue 9): the listings page through all of them, ``/metrics`` stays bounded,
and neither blocks the broker — ``/livez`` keeps answering fast while they are served.

The queues are written straight into Redis by a Lua script (in batches, so the shared Redis is
never blocked for long), in the layout the broker itself writes: each queue has one message,
and every ``BIG``-th queue has ``BIG_LEN``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import redis

from restmq import metrics
from restmq.http.listing import MAX_LIMIT
from restmq.keys import Keys
from tests.helpers.broker import Broker
from tests.helpers.wait import async_wait_until
from tests.http_support import BACKENDS, Served, serve_module

pytestmark = pytest.mark.slow

QUEUES = 100_000
BATCH = 5_000  # queues written per script call: each call blocks Redis only briefly
BIG, BIG_LEN = 10_000, 5
# /livez while the listings and /metrics are served: before issue 9 it stalled for seconds.
# Nearly every answer must come within LIVEZ_WITHIN; a rare one may be slower on a loaded
# machine (the OS, or a full pass of Python's garbage collector), never by much.
LIVEZ_WITHIN, LIVEZ_SHARE, LIVEZ_WORST = 0.1, 0.95, 0.5  # seconds, fraction, seconds
PAGES_AT_ONCE = 5

# KEYS: none (a test fixture on a standalone server). ARGV: prefix, first, last, big, big_len
CREATE = """
local prefix, first, last = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local big, big_len = tonumber(ARGV[4]), tonumber(ARGV[5])
local names = {}
for i = first, last do
  local name = string.format('mq-%06d', i)
  local base = prefix .. '{' .. name .. '}:'
  local n = (i % big == 0) and big_len or 1
  redis.call('SET', base .. 'seq', n)
  for id = 1, n do
    redis.call('HSET', base .. 'vals', id, 'v')
    redis.call('LPUSH', base .. 'ready', id)
  end
  redis.call('HSET', base .. 'meta', 'listed', 1)
  names[#names + 1] = name
end
redis.call('SADD', prefix .. 'queues', unpack(names))
return #names
"""


def _name(i: int) -> str:
    return f"mq-{i:06d}"


def _create_queues(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        create = client.register_script(CREATE)
        for first in range(1, QUEUES + 1, BATCH):
            create(args=[prefix, first, first + BATCH - 1, BIG, BIG_LEN])
        assert client.scard(Keys(prefix).registry) == QUEUES
    finally:
        client.close()


def _delete_queues(url: str, prefix: str) -> None:
    """Delete the namespace in small batches: one DEL of 400,000 keys would block the
    (shared) Redis for a while."""
    client = redis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=10_000):
            batch.append(key)
            if len(batch) == BATCH:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One broker per backend, over 100,000 queues written once for the module. What is
    measured is the event loop, not the storage deadline: on a loaded test machine a page
    of 1000 queues' stats may take longer than the default 5 s, so the deadline is longer."""
    with serve_module(request, tmp_path_factory, "--request-timeout", "30") as served:
        try:
            _create_queues(served.backend.url, served.backend.prefix)
            yield served
        finally:
            _delete_queues(served.backend.url, served.backend.prefix)


@pytest.fixture
def broker(served: Served) -> Broker:
    return served.broker


@dataclass
class LivezProbe:
    """Asks ``/livez`` again and again from a thread of its own (so that the test's event
    loop, busy reading big answers, does not slow the measure) and keeps the slowest."""

    url: str
    times: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LivezProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with urllib.request.urlopen(self.url + "/livez", timeout=10) as response:
                response.read()
            self.times.append(time.perf_counter() - started)
            self._stop.wait(0.01)


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=120)) as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def test_livez_answers_fast_while_stats_and_metrics_are_served(broker: Broker) -> None:
    url = broker.url
    async with aiohttp.ClientSession() as session:
        with LivezProbe(url) as probe:
            _, stats, control, _ = await asyncio.gather(
                _get(session, f"{url}/metrics"),
                _get(session, f"{url}/stats/?limit={MAX_LIMIT}"),
                _get(session, f"{url}/control/?limit={MAX_LIMIT}"),
                _get(session, f"{url}/q/?limit={MAX_LIMIT}"),
            )
        scrape = await _complete_scrape(session, url)

    times = sorted(probe.times)
    assert len(times) >= 10, times
    fast = sum(t < LIVEZ_WITHIN for t in times) / len(times)
    assert fast >= LIVEZ_SHARE and times[-1] < LIVEZ_WORST, (fast, times[-5:])
    assert len(json.loads(stats)["queues"]) == len(json.loads(control)["queues"]) == MAX_LIMIT
    _check_scrape(scrape)


async def _complete_scrape(session: aiohttp.ClientSession, url: str) -> str:
    """A scrape showing a complete read of the depths (a read of very many queues may
    outlast a scrape's deadline; the next scrapes show it when it is done)."""
    found: list[str] = []

    async def complete() -> bool:
        found.append((await _get(session, f"{url}/metrics")).decode())
        return "restmq_queue_depths_age_seconds +Inf" not in found[-1]

    await async_wait_until(complete, 60, "a scrape with the queue depths")
    return found[-1]


def _check_scrape(text: str) -> None:
    """Per-queue series for the queues holding the most messages only; the rest summed."""
    assert re.search(rf"^restmq_queues {QUEUES}(\.0)?$", text, re.M)
    waiting = dict(re.findall(
        r'^restmq_queue_messages\{queue="([^"]+)",state="waiting"\} (\S+)$', text, re.M
    ))
    assert len(waiting) == metrics.MAX_QUEUE_SERIES + 1
    big = {_name(i) for i in range(BIG, QUEUES + 1, BIG)}
    assert big <= set(waiting)
    assert sum(float(value) for value in waiting.values()) == QUEUES + len(big) * (BIG_LEN - 1)
    assert float(waiting[metrics.OTHER_QUEUE]) == QUEUES - metrics.MAX_QUEUE_SERIES
    assert len(text) < 1_000_000


async def test_every_queue_is_listed_exactly_once_across_the_pages(broker: Broker) -> None:
    """Every page of ``/q/``, asked for with the cursors the pages must answer (a few at a
    time, to keep the test short), tiles the 100,000 names: each once, in order."""
    expected = [_name(i) for i in range(1, QUEUES + 1)]
    cursors = ["", *expected[MAX_LIMIT - 1 :: MAX_LIMIT]]
    async with aiohttp.ClientSession() as session:
        pages: list[dict[str, Any]] = []
        for start in range(0, len(cursors), PAGES_AT_ONCE):
            pages += await asyncio.gather(*(
                _page(session, broker, "/q/", after)
                for after in cursors[start : start + PAGES_AT_ONCE]
            ))
        for path in ("/stats/", "/control/"):  # the same first pages, with counts
            first = await _page(session, broker, path, "")
            second = await _page(session, broker, path, first["next"])
            assert list(first["queues"]) + list(second["queues"]) == expected[: 2 * MAX_LIMIT]

    assert [name for page in pages for name in page["queues"]] == expected
    assert [page.get("next") for page in pages] == [*cursors[1:-1], None, None][: len(pages)]
    assert {page["count"] for page in pages} == {QUEUES}


async def _page(
    session: aiohttp.ClientSession, broker: Broker, path: str, after: str
) -> dict[str, Any]:
    params = {"limit": str(MAX_LIMIT), "after": after}
    async with session.get(
        f"{broker.url}{path}", params=params, headers={"Accept": "application/json"}
    ) as response:
        assert response.status == 200, await response.text()
        page: dict[str, Any] = await response.json()
        return page
