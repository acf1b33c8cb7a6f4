"""Connections (issue 9; SPEC §3.8, §9), with raw sockets against a real broker.

A request head (request line and headers) must come whole within ``header_timeout`` — half a
request line, or headers dribbled one at a time, get the connection closed; an idle kept-alive
connection is closed after ``keepalive_timeout``; a slow but complete request is never cut.
What aiohttp itself cannot parse is answered with SPEC §3.8's JSON error, without echoing the
input, and logged as one line now and then, never a traceback per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.helpers.broker import Broker, make_broker
from tests.http_support import JSON_CT, Served, serve_module

HEADER_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 2.5
SLACK = 2.0  # seconds of scheduling slack on a loaded machine
FLAGS = ("--header-timeout", str(HEADER_TIMEOUT), "--keepalive-timeout", str(KEEPALIVE_TIMEOUT))


# The transport is under test, not the storage: one backend is enough.
@pytest.fixture(scope="module", params=["valkey"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with serve_module(request, tmp_path_factory, *FLAGS) as served:
        yield served


@pytest.fixture
def broker(served: Served) -> Broker:
    served.wipe()
    return served.broker


@pytest.fixture(autouse=True)
async def _close_raw_connections() -> AsyncIterator[None]:
    yield
    for raw in Raw.opened_here:
        raw.writer.close()
        with contextlib.suppress(ConnectionError):
            await raw.writer.wait_closed()
    Raw.opened_here.clear()


class Raw:
    """A raw TCP connection to the broker (closed after the test)."""

    opened_here: ClassVar[list[Raw]] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.opened = time.monotonic()
        Raw.opened_here.append(self)

    @classmethod
    async def open(cls, broker: Broker) -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", broker.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_closed(self, limit: float) -> bytes:
        """Everything the server sends until it closes the connection (within ``limit`` s)."""
        return await asyncio.wait_for(self.reader.read(), limit)

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One HTTP response with a Content-Length (or none, for a 204)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status, headers = _head(head)
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return status, headers, body

    def age(self) -> float:
        return time.monotonic() - self.opened


def _head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def _split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, headers = _head(head + b"\r\n\r\n")
    return status, headers, body


def _assert_json_error(answer: bytes, status: int) -> str:
    code, headers, body = _split(answer)
    assert code == status, answer[:300]
    assert headers["content-type"] == JSON_CT
    assert headers["x-content-type-options"] == "nosniff"
    assert body.endswith(b"\r\n")
    error = json.loads(body)
    assert list(error) == ["error"] and isinstance(error["error"], str) and error["error"]
    return str(error["error"])


async def test_half_a_request_line_gets_the_connection_closed_with_a_408_within_the_header_timeout(
    broker: Broker,
) -> None:
    raw = await Raw.open(broker)
    await raw.send(b"GET /q/slow HT")

    answer = await raw.until_closed(HEADER_TIMEOUT + SLACK)

    assert HEADER_TIMEOUT * 0.9 <= raw.age() < HEADER_TIMEOUT + SLACK
    _assert_json_error(answer, 408)


async def test_headers_dribbled_one_by_one_do_not_extend_the_header_timeout(
    broker: Broker,
) -> None:
    raw = await Raw.open(broker)
    await raw.send(b"GET /livez HTTP/1.1\r\n")
    closed = asyncio.create_task(raw.until_closed(HEADER_TIMEOUT + SLACK))
    n = 0
    while not closed.done() and raw.age() < HEADER_TIMEOUT + SLACK:
        n += 1
        raw.writer.write(f"X-Drip-{n}: {n}\r\n".encode())  # slowloris: never the blank line
        await asyncio.wait({closed}, timeout=0.1)

    answer = await closed
    assert raw.age() < HEADER_TIMEOUT + SLACK
    assert n >= 5  # it was still sending when the broker closed it
    _assert_json_error(answer, 408)


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    broker: Broker,
) -> None:
    raw = await Raw.open(broker)

    answer = await raw.until_closed(HEADER_TIMEOUT + SLACK)

    assert answer == b""
    assert HEADER_TIMEOUT * 0.9 <= raw.age() < HEADER_TIMEOUT + SLACK


async def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    broker: Broker,
) -> None:
    raw = await Raw.open(broker)
    await raw.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await raw.response()
    await raw.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is reused
    again, _, _ = await raw.response()
    idle_from = time.monotonic()

    answer = await raw.until_closed(KEEPALIVE_TIMEOUT + SLACK)

    idle = time.monotonic() - idle_from
    assert (status, again, answer) == (200, 200, b"")
    assert KEEPALIVE_TIMEOUT * 0.9 <= idle < KEEPALIVE_TIMEOUT + SLACK  # not the header timeout


async def test_a_slow_but_complete_request_is_never_cut(broker: Broker) -> None:
    raw = await Raw.open(broker)
    # The head comes in two parts, then the request waits longer than both timeouts.
    wait = KEEPALIVE_TIMEOUT + 1
    await raw.send(f"GET /q/slowpoll?wait={wait} HTTP/1.1\r\n".encode())
    await asyncio.sleep(HEADER_TIMEOUT / 2)  # the scenario: a slow client, within the deadline
    await raw.send(b"Host: x\r\n\r\n")
    status, _, body = await raw.response()
    assert (status, body) == (204, b"")
    assert raw.age() >= wait

    # A body that takes longer than the header timeout to arrive is not cut either.
    value = b"slow-body"
    await raw.send(
        b"POST /q/slowpoll HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n" % len(value)
    )
    started = time.monotonic()
    for byte in value:
        raw.writer.write(bytes([byte]))
        await asyncio.sleep(HEADER_TIMEOUT * 2 / len(value))  # the scenario: a slow upload
    status, _, body = await raw.response()
    assert (status, body) == (200, b"slowpoll:1\r\n")
    assert time.monotonic() - started > HEADER_TIMEOUT


MANY_HEADERS = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
UNPARSEABLE = [
    ("garbage", b"GARBAGE\r\n\r\n", 400, b"GARBAGE"),
    ("invalid method chars", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"G@T"),
    ("bad header line", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, b"Bad Header"),
    ("bad version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, b"9.9"),
    ("control char in path", b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"\x01"),
    ("over-long header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
     431, b"aaaa"),
    ("over-long request line", b"GET /" + b"b" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, b"bbbb"),
    ("too many headers", b"GET / HTTP/1.1\r\nHost: x\r\n" + MANY_HEADERS + b"\r\n", 431, b"X-H"),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "echo"),
    [case[1:] for case in UNPARSEABLE],
    ids=[case[0] for case in UNPARSEABLE],
)
async def test_a_request_aiohttp_cannot_parse_gets_a_json_error_that_does_not_echo_it(
    broker: Broker, request_bytes: bytes, status: int, echo: bytes
) -> None:
    raw = await Raw.open(broker)
    await raw.send(request_bytes)

    answer = await raw.until_closed(10)

    message = _assert_json_error(answer, status)
    assert echo not in answer
    assert len(message) < 40


async def test_unparseable_requests_are_logged_as_one_line_not_a_traceback_each(
    tmp_path: Path, valkey_url: str
) -> None:
    broker = make_broker(tmp_path, valkey_url, "rmqt-parse:", FLAGS).start()
    try:
        for n in range(20):
            raw = await Raw.open(broker)
            await raw.send(b"GARBAGE%d\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n" % n)
            _assert_json_error(await raw.until_closed(10), 400)
            raw = await Raw.open(broker)  # the broker still answers
        await raw.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.response())[0] == 200
    finally:
        assert broker.stop() == 0
    log = broker.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert "GARBAGE" not in log
    assert len([line for line in log.splitlines() if "could not be parsed" in line]) == 1
