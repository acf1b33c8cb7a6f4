"""Errors over real HTTP (SPEC §3.8): the status, a JSON ``{"error": ...}`` body, and nothing
changed by the failed request. No answer in this file may be a 500.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import valkey_binary
from tests.helpers.broker import Broker, free_port, make_broker
from tests.helpers.wait import async_wait_until
from tests.http_support import (
    Answer,
    assert_error,
    assert_json,
    assert_key,
    call,
    no_5xx_session,
    queue_len,
)


async def queue_count(http: aiohttp.ClientSession, broker: Broker) -> int:
    answer = await call(http, broker, "GET", "/stats")
    assert answer.status == 200, answer
    return int(answer.json()["count"])


async def seed(http: aiohttp.ClientSession, broker: Broker, queue: str, *values: str) -> None:
    for value in values:
        answer = await call(
            http, broker, "POST", "/q/" + quote(queue, safe=""), data={"value": value}
        )
        assert answer.status == 200, answer


# ---------------------------------------------------------------- 404, 405


@pytest.mark.parametrize(
    "path", ["/nope", "/q/a/b", "/q//", "/p/", "/p/a/b", "/stats/a/b", "/control/a/b", "/j/"]
)
async def test_an_unknown_route_answers_404_with_a_json_error(
    http: aiohttp.ClientSession, broker: Broker, path: str
) -> None:
    answer = await call(http, broker, "GET", path)

    assert assert_error(answer, 404) == "not found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/q/x", {"GET", "POST", "DELETE"}),
        ("PATCH", "/q/x", {"GET", "POST", "DELETE"}),
        ("DELETE", "/queue", {"GET", "POST"}),
        ("PUT", "/", {"GET", "POST"}),
        ("POST", "/stats/x", {"GET"}),
        ("DELETE", "/p/x", {"GET", "POST"}),
        ("PUT", "/control/x", {"GET", "POST"}),
    ],
)
async def test_a_wrong_method_answers_405_with_allow_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker, method: str, path: str, allowed: set[str]
) -> None:
    await seed(http, broker, "x", "v")

    answer = await call(http, broker, method, path, data={"value": "w", "policy": "roundrobin"})

    assert assert_error(answer, 405) == "method not allowed"
    assert allowed <= {m.strip() for m in answer.headers["Allow"].split(",")}
    assert await queue_len(http, broker, "x") == 1
    assert (await call(http, broker, "GET", "/p/x")).json()["value"] == "broadcast"


# ---------------------------------------------------------------- 413


async def test_a_body_or_message_too_large_answers_413_and_adds_nothing(
    broker_factory: Any,
) -> None:
    small: Broker = broker_factory("--max-message-size", "1000", "--max-body-size", "4000")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    async with no_5xx_session() as http:
        ok = [
            await call(http, small, "POST", "/q/big", data={"value": "x" * 1000}),
            await call(http, small, "POST", "/q/big", data={"value": "é" * 500}),
        ]
        too_large = [
            await call(http, small, "POST", "/q/big", data={"value": "x" * 1001}),
            await call(http, small, "POST", "/q/big", data={"msg": "é" * 501}),
            await call(http, small, "POST", "/", data={"queue": "big", "value": "x" * 1001}),
            await call(
                http,
                small,
                "POST",
                "/q/big",
                data=b"x" * 1001,
                headers={"Content-Type": "text/plain"},
            ),
            await call(http, small, "POST", "/q/big", json={"value": "x" * 1001}),
            await call(
                http,
                small,
                "POST",
                "/queue",
                json={"cmd": "add", "queue": "big", "value": "x" * 1001},
            ),
            await call(http, small, "POST", "/q/big", data={"value": "v", "pad": "p" * 4000}),
            await call(
                http,
                small,
                "POST",
                "/q/big",
                data=chunks(),
                headers={"Content-Type": "text/plain"},
            ),
            await call(
                http,
                small,
                "GET",
                "/q/big",
                data=b"z" * 5000,
                headers={"Content-Type": "text/plain"},
            ),
        ]

        for answer in ok:
            assert answer.status == 200, answer
        for answer in too_large:
            assert_error(answer, 413)
        assert await queue_len(http, small, "big") == 2


# ---------------------------------------------------------------- queue names


BAD_NAMES = [
    pytest.param("a" * 257, id="257-chars"),
    pytest.param("a\x01b", id="control-01"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param("a/b", id="slash"),
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_an_invalid_queue_name_answers_400_on_every_route(
    http: aiohttp.ClientSession, broker: Broker, name: str
) -> None:
    path = quote(name, safe="")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/", {"data": {"queue": name, "value": "v"}}),
        ("POST", "/", {"json": {"queue": name, "value": "v"}}),
        ("GET", f"/?queue={path}", {}),
        ("POST", f"/q/{path}", {"data": {"value": "v"}}),
        ("GET", f"/q/{path}", {}),
        ("DELETE", f"/q/{path}", {}),
        ("GET", f"/p/{path}", {}),
        ("POST", f"/p/{path}", {"data": {"policy": "roundrobin"}}),
        ("GET", f"/control/{path}", {}),
        ("POST", f"/control/{path}", {"data": {"status": "stop"}}),
        ("GET", f"/stats/{path}", {}),
        ("GET", f"/j/{path}", {}),
    ]

    for method, route, kw in requests:
        answer = await call(http, broker, method, route, **kw)
        assert_error(answer, 400)
    command = await call(
        http, broker, "POST", "/queue", json={"cmd": "add", "queue": name, "value": "v"}
    )
    assert command.status == 200 and "error" in command.json()
    assert await queue_count(http, broker) == 0


async def test_an_empty_queue_name_is_missing(http: aiohttp.ClientSession, broker: Broker) -> None:
    answers = [
        await call(http, broker, "POST", "/", data={"queue": "", "value": "v"}),
        await call(http, broker, "POST", "/", json={"queue": "", "value": "v"}),
        await call(http, broker, "POST", "/", data={"value": "v"}),
    ]

    for answer in answers:
        assert_error(answer, 400)
    assert await queue_count(http, broker) == 0


async def test_a_queue_name_of_256_characters_is_valid(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    name = "é" * 256

    answer = await call(http, broker, "POST", "/q/" + quote(name), data={"value": "v"})

    assert_key(answer, f"{name}:1")


# ---------------------------------------------------------------- JSONP callback names


BAD_CALLBACKS = [
    "1bad",
    "a-b",
    "a b",
    "x" * 65,
    "alert(1)",
    "a;b",
    "</script>",
    "a..b",
    "a.",
    "if",
    "a[0]",
    "é",
]


@pytest.mark.parametrize("callback", BAD_CALLBACKS)
async def test_an_invalid_callback_answers_400_and_takes_nothing(
    http: aiohttp.ClientSession, broker: Broker, callback: str
) -> None:
    await seed(http, broker, "x", "v")
    await call(http, broker, "POST", "/control/x", data={"status": "stop"})
    cb = quote(callback, safe="")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/q/x?callback={cb}", {}),
        ("GET", f"/?queue=x&callback={cb}", {}),
        ("POST", f"/q/x?callback={cb}", {"data": {"value": "w"}}),
        ("POST", "/q/x", {"data": {"value": "w", "callback": callback}}),
        ("POST", "/", {"data": {"queue": "x", "value": "w", "callback": callback}}),
        ("POST", f"/queue?callback={cb}", {"json": {"cmd": "take", "queue": "x"}}),
        (
            "POST",
            "/queue",
            {"data": {"body": '{"cmd": "take", "queue": "x"}', "callback": callback}},
        ),
        ("DELETE", f"/q/x?callback={cb}", {}),
        ("POST", f"/control/x?callback={cb}", {"data": {"status": "start"}}),
        ("POST", f"/p/x?callback={cb}", {"data": {"policy": "roundrobin"}}),
        ("GET", f"/stats/x?callback={cb}", {}),
    ]

    for method, path, kw in requests:
        answer = await call(http, broker, method, path, **kw)
        assert "callback" in assert_error(answer, 400)
    assert await queue_len(http, broker, "x") == 1
    stats = (await call(http, broker, "GET", "/stats/x")).json()
    assert (stats["status"], stats["policy"]) == ("stopped", "broadcast")


# ---------------------------------------------------------------- malformed input


async def test_malformed_forms_and_invalid_utf8_answer_400_and_add_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    text = {"Content-Type": "text/plain"}
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/q/x", {"data": b"value=%ff", "headers": form}),
        ("/q/x", {"data": b"value=%c3%28", "headers": form}),
        ("/q/x", {"data": b"value=\xff\xfe", "headers": form}),
        ("/", {"data": b"queue=x&value=%ff", "headers": form}),
        ("/q/x?value=%ff", {}),
        ("/q/x", {"data": b"\xff\xfe raw", "headers": text}),
        ("/q/x", {"data": b'{"value": "\xff"}', "headers": {"Content-Type": "application/json"}}),
        ("/queue", {"data": b"body=%ff", "headers": form}),
    ]

    for path, kw in requests:
        answer = await call(http, broker, "POST", path, **kw)
        assert_error(answer, 400)
    assert await queue_count(http, broker) == 0


MALFORMED_COMMANDS = [
    "{",
    "{'cmd': 'add'}",
    "",
    "add",
    '{"cmd": "add", "queue": "q", "value": "v", "ttl": NaN}',
    '{"cmd": "add", "queue": "q", "value": "v", "ttl": Infinity}',
    "[1, 2]",
    '"add"',
    "5",
    "null",
    "{}",
    '{"queue": "q", "value": "v"}',
    '{"cmd": 5, "queue": "q"}',
    '{"cmd": null}',
    '{"cmd": ["add"]}',
    "[" * 100_000,
]


@pytest.mark.parametrize("body", MALFORMED_COMMANDS, ids=range(len(MALFORMED_COMMANDS)))
async def test_a_malformed_command_answers_400_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker, body: str
) -> None:
    ways: list[dict[str, Any]] = [
        {"data": body.encode(), "headers": {"Content-Type": "application/json"}},
        {"data": body.encode(), "headers": {"Content-Type": "text/plain"}},
        {"data": {"body": body}},
        {"data": {"msg": body}},
    ]

    for kw in ways:
        assert_error(await call(http, broker, "POST", "/queue", **kw), 400)
    assert await queue_count(http, broker) == 0


async def test_a_command_sent_without_any_body_answers_400(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answers = [
        await call(http, broker, "POST", "/queue"),
        await call(http, broker, "POST", "/queue", data={"other": "x"}),
    ]

    for answer in answers:
        assert_error(answer, 400)


COMMAND_ERRORS = [
    {"cmd": "add", "queue": "q", "value": 5},
    {"cmd": "add", "queue": "q", "value": None},
    {"cmd": "add", "queue": "q", "value": ["v"]},
    {"cmd": "add", "queue": "q"},
    {"cmd": "add", "value": "v"},
    {"cmd": "add", "queue": 5, "value": "v"},
    {"cmd": "add", "queue": "", "value": "v"},
    {"cmd": "add", "queue": "a/b", "value": "v"},
    {"cmd": "add", "queue": "q", "value": "v", "ttl": "soon"},
    {"cmd": "add", "queue": "q", "value": "v", "ttl": -1},
    {"cmd": "add", "queue": "q", "value": "v", "ttl": True},
    {"cmd": "add", "queue": "q", "value": "v", "ttl": 1e300},
    {"cmd": "add", "queue": "q", "value": "v", "delay": -1},
    {"cmd": "get", "queue": 5},
    {"cmd": "take"},
    {"cmd": "del", "queue": "q"},
    {"cmd": "del", "queue": "q", "key": 1},
    {"cmd": "del", "queue": "q", "key": "other:1"},
    {"cmd": "del", "queue": "q", "key": "q:one"},
]


@pytest.mark.parametrize("command", COMMAND_ERRORS, ids=range(len(COMMAND_ERRORS)))
async def test_a_command_error_answers_200_with_an_error_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker, command: dict[str, Any]
) -> None:
    await seed(http, broker, "q", "kept")

    answer = await call(http, broker, "POST", "/queue", json=command)

    assert assert_error(answer, 200) != "null resultset"
    assert await queue_len(http, broker, "q") == 1
    assert await queue_count(http, broker) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"value": 5},
        {"value": None, "msg": 1},
        {"value": "v", "ttl": "abc"},
        {"value": "v", "ttl": True},
        {"value": "v", "ttl": -1},
        {"value": "v", "ttl": [1]},
    ],
    ids=str,
)
async def test_a_json_body_with_a_wrong_field_type_answers_400(
    http: aiohttp.ClientSession, broker: Broker, body: dict[str, Any]
) -> None:
    on_queue = await call(http, broker, "POST", "/q/x", json=body)
    on_root = await call(http, broker, "POST", "/", json={"queue": "x", **body})

    assert_error(on_queue, 400)
    assert_error(on_root, 400)
    assert await queue_count(http, broker) == 0


@pytest.mark.parametrize(
    "ttl", ["abc", "-1", "-0.5", "nan", "inf", "-inf", "1e300", "1e12", "0x10", "5s"]
)
async def test_a_ttl_that_is_not_a_valid_number_of_seconds_answers_400(
    http: aiohttp.ClientSession, broker: Broker, ttl: str
) -> None:
    answers = [
        await call(http, broker, "POST", "/q/x", data={"value": "v", "ttl": ttl}),
        await call(http, broker, "POST", "/", data={"queue": "x", "value": "v", "ttl": ttl}),
        await call(http, broker, "POST", f"/q/x?ttl={quote(ttl)}", data={"value": "v"}),
    ]

    for answer in answers:
        assert "ttl" in assert_error(answer, 400)
    assert await queue_count(http, broker) == 0


async def test_a_bad_policy_or_status_answers_400_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/p/x", data={"policy": "roundrobin"})
    await call(http, broker, "POST", "/control/x", data={"status": "stop"})
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/p/x", {"data": {"policy": "fifo"}}),
        ("/p/x", {"data": {"policy": "ROUNDROBIN"}}),
        ("/p/x", {"data": {"policy": "2"}}),
        ("/p/x", {"data": {"policy": ""}}),
        ("/p/x", {}),
        ("/p/x", {"json": {"policy": 1}}),
        ("/control/x", {"data": {"status": "pause"}}),
        ("/control/x", {"data": {"status": "started"}}),
        ("/control/x", {"data": {"status": "1"}}),
        ("/control/x", {"data": {"status": ""}}),
        ("/control/x", {}),
        ("/control/x", {"json": {"status": True}}),
    ]

    for path, kw in bad:
        assert_error(await call(http, broker, "POST", path, **kw), 400)
    stats = (await call(http, broker, "GET", "/stats/x")).json()
    assert (stats["policy"], stats["status"]) == ("roundrobin", "stopped")


# ---------------------------------------------------------------- empty and missing values

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_an_empty_value_in_a_form_counts_as_missing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answers = [
        await call(http, broker, "POST", "/q/x", data={"value": ""}),
        await call(http, broker, "POST", "/q/x", data={"msg": ""}),
        await call(http, broker, "POST", "/q/x", data={"value": "", "msg": ""}),
        await call(http, broker, "POST", "/q/x?value=", data=b"", headers=FORM),
        await call(http, broker, "POST", "/", data={"queue": "x", "value": ""}),
        await call(http, broker, "POST", "/", data={"queue": "x"}),
        # no body and no Content-Type at all, as `curl -X POST` sends it
        await call(http, broker, "POST", "/q/x", skip_auto_headers=["Content-Type"]),
    ]

    for answer in answers:
        assert assert_error(answer, 400) == "missing value"
    assert await queue_count(http, broker) == 0


async def test_an_empty_value_sent_as_json_or_raw_body_is_a_valid_message(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answers = [
        await call(http, broker, "POST", "/q/x", json={"value": ""}),
        await call(http, broker, "POST", "/", json={"queue": "x", "value": ""}),
        await call(http, broker, "POST", "/q/x", data=b"", headers={"Content-Type": "text/plain"}),
        await call(http, broker, "POST", "/q/x", data=b""),  # application/octet-stream
        await call(http, broker, "POST", "/queue", json={"cmd": "add", "queue": "x", "value": ""}),
    ]

    for n, answer in enumerate(answers[:4], start=1):
        assert_key(answer, f"x:{n}")
    assert_json(answers[4], {"queue": "x", "value": "", "key": "x:5"})
    for n in range(1, 6):
        assert_json(
            await call(http, broker, "GET", "/q/x"), {"key": f"x:{n}", "value": "", "count": 0}
        )


# ---------------------------------------------------------------- storage unavailable


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or valkey_binary()
    return subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def assert_unavailable(answer: Answer) -> None:
    assert assert_error(answer, 503) == "storage unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


OUTAGE_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/q/x", {}),
    ("POST", "/q/x", {"data": {"value": "v"}}),
    ("POST", "/", {"data": {"queue": "x", "value": "v"}}),
    ("GET", "/?queue=x", {}),
    ("POST", "/queue", {"json": {"cmd": "add", "queue": "x", "value": "v"}}),
    ("DELETE", "/q/x", {}),
    ("GET", "/stats/", {}),
    ("GET", "/healthz", {}),
]


async def assert_recovers(http: aiohttp.ClientSession, broker: Broker, first_key: str) -> None:
    """Once Redis is back the broker serves again: 204, a healthy /healthz, add and take.

    /healthz is awaited before the add: while the pub/sub link reconnects, a command may still
    get a 503 (a known bug: the subscriber shares the command pool; see the report).
    """

    async def serves() -> bool:
        return (await call(http, broker, "GET", "/q/x")).status == 204

    async def healthy() -> bool:
        return (await call(http, broker, "GET", "/healthz")).status == 200

    await async_wait_until(serves, 20, "the broker answers once Redis is up")
    await async_wait_until(healthy, 20, "/healthz is 200 once Redis is up")
    assert_key(await call(http, broker, "POST", "/q/x", data={"value": "v"}), first_key)
    assert_json(
        await call(http, broker, "GET", "/q/x"), {"key": first_key, "value": "v", "count": 0}
    )


async def test_a_broker_started_without_redis_answers_503_then_recovers(tmp_path: Path) -> None:
    port = free_port()
    broker = make_broker(tmp_path, f"redis://127.0.0.1:{port}/0", "rmqt-down:").start()
    redis_proc: subprocess.Popen[bytes] | None = None
    try:
        async with no_5xx_session(allowed=frozenset({503})) as http:
            assert_json(await call(http, broker, "GET", "/livez"), {"status": "ok"})
            for method, path, kw in OUTAGE_REQUESTS:
                assert_unavailable(await call(http, broker, method, path, **kw))

            redis_proc = start_redis(port, tmp_path)

            await assert_recovers(http, broker, "x:1")
    finally:
        broker.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)


async def test_a_redis_that_goes_away_answers_503_then_recovers(tmp_path: Path) -> None:
    port = free_port()
    redis_proc = start_redis(port, tmp_path)
    try:
        broker = make_broker(tmp_path, f"redis://127.0.0.1:{port}/0", "rmqt-away:").start()
        try:
            async with no_5xx_session(allowed=frozenset({503})) as http:
                assert_key(await call(http, broker, "POST", "/q/x", data={"value": "v"}), "x:1")

                redis_proc.kill()
                redis_proc.wait(10)
                for method, path, kw in OUTAGE_REQUESTS:
                    assert_unavailable(await call(http, broker, method, path, **kw))
                assert_json(await call(http, broker, "GET", "/livez"), {"status": "ok"})

                redis_proc = start_redis(port, tmp_path)  # empty: no data, no scripts

                await assert_recovers(http, broker, "x:1")
        finally:
            broker.stop()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


# ---------------------------------------------------------------- found by schemathesis


async def test_a_multipart_part_with_malformed_headers_answers_400_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"\x1d\xc3\x8d\"\r\n\r\nv\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\nv\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}

    for path in ("/q/x", "/"):
        assert_error(await call(http, broker, "POST", path, data=body, headers=headers), 400)
    assert await queue_count(http, broker) == 0


@pytest.mark.parametrize("path", ["/static/nope.html", "/static/..%2Fhttp%2Fapp.py", "/static/"])
async def test_a_missing_static_file_answers_404_with_a_json_error(
    http: aiohttp.ClientSession, broker: Broker, path: str
) -> None:
    answer = await call(http, broker, "GET", path)

    assert assert_error(answer, 404) == "not found"
