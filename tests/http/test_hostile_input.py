"""Hostile input over real HTTP (issue 9): each answers a clear 4xx with a JSON error and
changes nothing, never a 500; and every response says ``X-Content-Type-Options: nosniff``.

- a queue named in a path by percent-escapes that are not UTF-8 (``/q/%ff``), on every route
  with a queue in its path;
- numbers that Python would read but a request must not send (``1_0``, an Arabic-Indic
  digit, `` 5``, ``0x10``, ``1e400``, ``nan``), in every numeric field;
- a produce request with both ``values`` and ``value`` (or ``msg``);
- a JSON-protocol command whose ``cmd`` is empty.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from restmq.http.app import ROUTES
from restmq.http.routing import template_of
from tests.helpers.broker import Broker
from tests.http_support import Answer, assert_error, assert_key, call, queue_len


async def queue_names(http: aiohttp.ClientSession, broker: Broker) -> list[str]:
    answer = await call(http, broker, "GET", "/q/", headers={"Accept": "application/json"})
    assert answer.status == 200, answer
    return list(answer.json()["queues"])


async def seed(http: aiohttp.ClientSession, broker: Broker, queue: str, value: str) -> None:
    assert_key(await call(http, broker, "POST", f"/q/{queue}", data={"value": value}),
               f"{queue}:1")


# ---------------------------------------------------------------- paths that are not UTF-8

QUEUE_ROUTES = sorted(
    (route.method, template_of(route.path))
    for route in ROUTES
    if isinstance(route, web.RouteDef) and "{queue}" in template_of(route.path)
)
NOT_UTF8 = ["%ff", "%ED%A0%80", "%C0%AE", "a%80b", "%E2%82"]  # byte, surrogate, overlong, cut
EVERY_FIELD = {"value": "v", "policy": "roundrobin", "status": "stop", "key": "x:1",
               "receipt": "r"}
SHORT = aiohttp.ClientTimeout(total=10)  # a stream opened by mistake fails the test, no hang


def test_every_route_with_a_queue_in_its_path_is_under_test() -> None:
    families = {template.split("/")[1] for _, template in QUEUE_ROUTES}
    assert families >= {"q", "p", "control", "stats", "c", "sse", "ws", "j"}
    assert ("POST", "/q/{queue}/reserve") in QUEUE_ROUTES


@pytest.mark.parametrize(("method", "template"), QUEUE_ROUTES, ids=str)
async def test_a_queue_path_that_is_not_utf8_answers_400_and_creates_no_queue(
    http: aiohttp.ClientSession, broker: Broker, method: str, template: str
) -> None:
    for name in NOT_UTF8:
        path = template.replace("{queue}", name)
        answer = await call(http, broker, method, path, data=EVERY_FIELD, timeout=SHORT)
        assert assert_error(answer, 400) == "the path is not valid UTF-8", path

    assert await queue_names(http, broker) == []


async def test_escaped_utf8_and_an_escaped_percent_still_name_their_queues(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    assert_key(await call(http, broker, "POST", "/q/%C3%A9", data={"value": "v"}), "é:1")
    assert_key(await call(http, broker, "POST", "/q/%25ff", data={"value": "v"}), "%ff:1")

    assert await queue_names(http, broker) == ["%ff", "é"]


# ---------------------------------------------------------------- strict numbers

NOT_NUMBERS = ["1_0", "\u0661", " 5", "0x10", "1e400", "nan"]
# (method, path, the numeric field, the request's other fields)
NUMERIC_FIELDS = [
    ("POST", "/q/n", "ttl", {"value": "v"}),
    ("POST", "/q/n", "delay", {"value": "v"}),
    ("POST", "/", "ttl", {"queue": "n", "value": "v"}),
    ("POST", "/", "delay", {"queue": "n", "value": "v"}),
    ("GET", "/q/n", "count", {}),
    ("GET", "/q/n", "wait", {}),
    ("POST", "/q/n/reserve", "timeout", {}),
    ("POST", "/q/n/reserve", "count", {}),
    ("POST", "/q/n/reserve", "wait", {}),
    ("POST", "/q/n/nack", "delay", {"key": "n:1", "receipt": "r"}),
    ("POST", "/q/n/extend", "timeout", {"key": "n:1", "receipt": "r"}),
    ("POST", "/p/n", "max_deliveries", {}),
    ("GET", "/c/n", "heartbeat", {}),
]


def request_of(method: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"params" if method == "GET" else "data": fields, "timeout": SHORT}


@pytest.mark.parametrize(
    ("method", "path", "name", "others"), NUMERIC_FIELDS, ids=lambda v: str(v)[:20]
)
async def test_a_number_python_would_read_but_a_request_must_not_send_is_a_400(
    http: aiohttp.ClientSession,
    broker: Broker,
    method: str,
    path: str,
    name: str,
    others: dict[str, str],
) -> None:
    await seed(http, broker, "n", "kept")

    for text in NOT_NUMBERS:
        request = request_of(method, {**others, name: text})
        answer = await call(http, broker, method, path, **request)
        assert f"'{name}'" in assert_error(answer, 400), (path, name, text)

    assert await queue_len(http, broker, "n") == 1
    policy = await call(http, broker, "GET", "/p/n")
    assert policy.json() == {"queue": "n", "value": "broadcast"}


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 400, "-1", "-1e999"])
async def test_a_json_number_out_of_range_is_a_400_not_a_crash(
    http: aiohttp.ClientSession, broker: Broker, number: str
) -> None:
    for body in [f'{{"value": "v", "ttl": {number}}}', f'{{"value": "v", "delay": {number}}}']:
        answer = await call(http, broker, "POST", "/q/n", data=body,
                            headers={"Content-Type": "application/json"})
        assert_error(answer, 400)

    assert await queue_names(http, broker) == []


async def test_a_json_command_with_a_loose_number_is_a_command_error_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for text in NOT_NUMBERS:
        command = {"cmd": "add", "queue": "n", "value": "v", "ttl": text}
        answer = await call(http, broker, "POST", "/queue", json=command)
        assert answer.status == 200 and "'ttl'" in answer.json()["error"], answer

    assert await queue_names(http, broker) == []


# ---------------------------------------------------------------- values and value together

BOTH = [
    ("/q/n", {"values": ["a", "b"], "value": "c"}, ""),
    ("/q/n", {"values": ["a", "b"], "msg": "c"}, ""),
    ("/q/n", {"values": ["a", "b"]}, "?value=c"),
    ("/", {"queue": "n", "values": ["a", "b"], "value": "c"}, ""),
    ("/", {"queue": "n", "values": ["a", "b"], "msg": ""}, ""),
]


@pytest.mark.parametrize(("path", "body", "query"), BOTH)
async def test_values_with_value_or_msg_in_one_produce_request_is_a_400(
    http: aiohttp.ClientSession, broker: Broker, path: str, body: dict[str, Any], query: str
) -> None:
    answer = await call(http, broker, "POST", path + query, json=body)

    assert "not both" in assert_error(answer, 400)
    assert await queue_names(http, broker) == []


# ---------------------------------------------------------------- the JSON protocol

@pytest.mark.parametrize(
    "request_kw",
    [
        {"json": {"cmd": "", "queue": "n", "value": "v"}},
        {"data": {"body": json.dumps({"cmd": "", "queue": "n", "value": "v"})}},
    ],
    ids=["json", "form"],
)
async def test_an_empty_cmd_is_a_400_with_a_json_error(
    http: aiohttp.ClientSession, broker: Broker, request_kw: dict[str, Any]
) -> None:
    answer = await call(http, broker, "POST", "/queue", **request_kw)

    assert "cmd" in assert_error(answer, 400)
    assert await queue_names(http, broker) == []


# ---------------------------------------------------------------- nosniff everywhere

NOSNIFF = ("X-Content-Type-Options", "nosniff")
def plain_requests() -> list[tuple[str, str, dict[str, Any], int]]:
    """One request of each kind of answer and its status (made afresh: a body stream is
    read once)."""
    return [
        ("POST", "/q/s", {"data": {"value": "<script>alert(1)</script>"}}, 200),  # a text key
        ("GET", "/q/s", {}, 200),  # JSON
        ("GET", "/q/s", {}, 204),  # 204
        ("GET", "/q/s", {"params": {"callback": "cb"}}, 204),  # JSONP (204: empty)
        ("GET", "/?queue=s", {}, 404),  # 404 empty queue
        ("GET", "/", {}, 302),  # 302
        ("GET", "/q/", {}, 200),  # HTML
        ("GET", "/queue", {}, 200),  # HTML help
        ("GET", "/j/s", {}, 200),  # HTML job page
        ("GET", "/static/index.html", {}, 200),  # a static file
        ("GET", "/static/nope.js", {}, 404),  # its 404
        ("GET", "/nope", {}, 404),  # aiohttp's 404
        ("PUT", "/q/s", {}, 405),  # aiohttp's 405
        ("POST", "/q/s", {"data": {"ttl": "x", "value": "v"}}, 400),  # 400
        ("POST", "/q/s", {"data": io.BytesIO(b"x" * (5 << 20))}, 413),  # 413
        ("POST", "/xmlrpc", {"data": b"<methodCall><methodName>len</methodName><params><param>"
                                     b"<value>s</value></param></params></methodCall>"}, 200),
        ("GET", "/livez", {}, 200),
        ("GET", "/healthz", {}, 200),
        ("GET", "/metrics", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/stats", {}, 200),
    ]


async def test_every_answer_says_nosniff(http: aiohttp.ClientSession, broker: Broker) -> None:
    for method, path, kw, status in plain_requests():
        answer: Answer = await call(http, broker, method, path, **kw)
        assert answer.status == status, (method, path, answer)
        assert answer.headers.get(NOSNIFF[0]) == NOSNIFF[1], (method, path, answer)


@pytest.mark.parametrize("path", ["/c/s", "/sse/s", "/events/stats"])
async def test_every_stream_says_nosniff(
    http: aiohttp.ClientSession, broker: Broker, path: str
) -> None:
    async with http.get(broker.url + path) as response:
        assert response.status == 200
        assert response.headers.get(NOSNIFF[0]) == NOSNIFF[1]


async def test_the_websocket_handshake_says_nosniff(broker: Broker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(
        b"GET /ws/s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 101")
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in head


async def test_a_queue_name_with_markup_is_served_as_text_with_nosniff(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    queue = "<img src=x onerror=alert(1)>"
    answer = await call(http, broker, "POST", "/q/" + quote(queue, safe=""), data={"value": "v"})

    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.headers.get(NOSNIFF[0]) == NOSNIFF[1]


async def test_a_json_add_with_values_and_value_is_a_command_error_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    command = {"cmd": "add", "queue": "vv", "value": "a", "values": ["b"]}
    answer = await call(http, broker, "POST", "/queue", json=command)
    assert answer.status == 200 and "not both" in answer.json()["error"]
    assert await queue_len(http, broker, "vv") == 0


@pytest.mark.parametrize("digits", [19, 5000])
async def test_a_message_key_with_a_huge_number_is_a_400_not_a_crash(
    http: aiohttp.ClientSession, broker: Broker, digits: int
) -> None:
    await seed(http, broker, "big", "v")
    key = "big:" + "9" * digits
    sse = await call(http, broker, "GET", "/sse/big", headers={"Last-Event-ID": key})
    assert_error(sse, 400)
    delete = {"cmd": "del", "queue": "big", "key": key}
    answer = await call(http, broker, "POST", "/queue", json=delete)
    assert answer.status == 200 and "invalid message key" in answer.json()["error"]
    ack = await call(http, broker, "POST", "/q/big/ack", data={"key": key, "receipt": "r"})
    assert_error(ack, 400)
    assert await queue_len(http, broker, "big") == 1
