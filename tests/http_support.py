"""Support for the tests that talk HTTP to a real broker: one broker per module and backend.

Starting a broker process costs about a second, so the HTTP route tests share one broker per
test module and backend, and get the isolation of a fresh broker by wiping the module's key
namespace before each test (the broker keeps no queue state in memory between requests).
Answers are kept as exact bytes; a client session from ``no_5xx_session`` fails the test when
any answer it got was a 5xx other than the ones the test says it expects.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import redis
from multidict import CIMultiDictProxy

from tests.conftest import Backend, _local_redis_or_skip
from tests.helpers.broker import Broker, make_broker

JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
JS_CT = "application/javascript; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"
BACKENDS = ["valkey", "redis"]


@dataclass(frozen=True)
class Served:
    """A broker shared by one test module, on one backend and key prefix."""

    backend: Backend
    broker: Broker

    def wipe(self) -> None:
        """Delete every key of the namespace: the next test starts from an empty broker."""
        wipe_prefix(self.backend.url, self.backend.prefix)


def wipe_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def serve_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, *extra: str
) -> Iterator[Served]:
    """Start one broker for a module-scoped fixture parametrized over ``BACKENDS``."""
    name = request.param
    url = request.getfixturevalue("valkey_url") if name == "valkey" else _local_redis_or_skip()
    backend = Backend(name, url, f"rmqt-{uuid.uuid4().hex[:12]}:")
    tmp = tmp_path_factory.mktemp(f"broker-{name}")
    broker = make_broker(tmp, url, backend.prefix, extra).start()
    try:
        yield Served(backend, broker)
    finally:
        broker.stop()
        wipe_prefix(url, backend.prefix)


class Answer:
    """One HTTP answer: status, headers and the exact body bytes."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def json(self) -> Any:
        assert self.body.endswith(b"\r\n"), self.body
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.content_type} {self.body[:200]!r}>"


@asynccontextmanager
async def no_5xx_session(
    allowed: frozenset[int] = frozenset(),
) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session; every answer it got is checked afterwards: no 5xx but ``allowed``."""
    seen: list[tuple[str, str, int]] = []

    async def on_end(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
        seen.append((params.method, str(params.url), params.response.status))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session
    assert [s for s in seen if s[2] >= 500 and s[2] not in allowed] == []


async def call(
    http: aiohttp.ClientSession, broker: Broker, method: str, path: str, **kw: Any
) -> Answer:
    kw.setdefault("allow_redirects", False)
    async with http.request(method, broker.url + path, **kw) as resp:
        return Answer(resp.status, resp.headers, await resp.read())


async def raw_http(broker: Broker, request: bytes) -> bytes:
    """Send one request on a fresh connection and read every byte until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    return data


def json_bytes(obj: Any) -> bytes:
    """The broker's JSON framing: JSON with ", " and ": " separators, UTF-8, then CRLF."""
    return (json.dumps(obj, ensure_ascii=False) + "\r\n").encode()


def assert_json(answer: Answer, expected: Any, status: int = 200) -> None:
    assert (answer.status, answer.content_type) == (status, JSON_CT), answer
    assert answer.body == json_bytes(expected)


def assert_error(answer: Answer, status: int) -> str:
    """A JSON error answer (SPEC §3.8): ``{"error": "<message>"}``; returns the message."""
    assert (answer.status, answer.content_type) == (status, JSON_CT), answer
    body = answer.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def assert_key(answer: Answer, key: str) -> None:
    assert (answer.status, answer.content_type) == (200, TEXT_CT), answer
    assert answer.body == f"{key}\r\n".encode()


def assert_jsonp(answer: Answer, callback: str, expected: Any) -> None:
    assert (answer.status, answer.content_type) == (200, JS_CT), answer
    inner = json.dumps(expected, ensure_ascii=False)
    assert answer.body == f"{callback}({inner});\r\n".encode()


def stats_entry(name: str, length: int, **kw: Any) -> dict[str, Any]:
    """One queue's entry in ``/stats`` with the defaults of a fresh queue."""
    entry: dict[str, Any] = {
        "name": name,
        "len": length,
        "status": "started",
        "policy": "broadcast",
        "consumers": 0,
        "leased": 0,
        "delayed": 0,
        "dead": 0,
    }
    entry.update(kw)
    return entry


async def queue_len(http: aiohttp.ClientSession, broker: Broker, queue: str) -> int:
    """The queue's length as ``/stats/<queue>`` reports it."""
    answer = await call(http, broker, "GET", "/stats/" + quote(queue, safe=""))
    assert answer.status == 200, answer
    return int(answer.json()["len"])
