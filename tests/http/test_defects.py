"""The defects of RestMQ 1.x that must not come back (SPEC §3.9), one test each, over HTTP.

Where a defect is about what Redis holds (a leaked value, keys left behind), the keyspace is
read directly under the test's namespace.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until
from tests.http_support import (
    JS_CT,
    Answer,
    assert_json,
    assert_key,
    call,
    no_5xx_session,
    queue_len,
    raw_http,
)


async def keys_of(raw_redis: Redis, prefix: str, queue: str) -> dict[str, str]:
    """The queue's keys that exist, as suffix -> Redis type."""
    found: dict[str, str] = {}
    async for key in raw_redis.scan_iter(match=f"{prefix}{{{queue}}}*", count=1000):
        found[key.rsplit(":", 1)[1]] = str(await raw_redis.type(key))
    return found


TRICKY_VALUES = ["007", "1e3", "3.0", "-0", "true", "null", "[1]", '{"a": 1}', " 42 ", "0x1F"]


async def test_values_are_never_turned_into_numbers(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for value in TRICKY_VALUES:
        await call(http, broker, "POST", "/q/nums", data={"value": value})
        await call(
            http, broker, "POST", "/queue", json={"cmd": "add", "queue": "js", "value": value}
        )

    for n, value in enumerate(TRICKY_VALUES, start=1):
        soft = await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "js"})
        taken = await call(http, broker, "POST", "/queue", json={"cmd": "take", "queue": "js"})
        got = await call(http, broker, "GET", "/q/nums")
        assert (
            got.body
            == json.dumps(
                {"key": f"nums:{n}", "value": value, "count": 0}, ensure_ascii=False
            ).encode()
            + b"\r\n"
        )
        assert soft.json()["value"] == value and isinstance(soft.json()["value"], str)
        assert taken.json()["value"] == value


async def test_a_204_carries_no_body_even_on_a_kept_alive_connection(broker: Broker) -> None:
    request = "GET {} HTTP/1.1\r\nHost: x\r\n\r\n"
    pipelined = (
        request.format("/q/empty")
        + request.format("/q/empty?callback=cb")
        + "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )

    raw = await raw_http(broker, pipelined.encode())

    first, rest = raw.split(b"\r\n\r\n", 1)
    second, rest = rest.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 204 ") and second.startswith(b"HTTP/1.1 204 ")
    for head in (first, second):
        assert b"\r\ncontent-type:" not in head.lower()
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), raw
    assert rest.endswith(b'\r\n\r\n{"status": "ok"}\r\n')


async def test_a_get_removes_the_value_with_the_message(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend, raw_redis: Redis
) -> None:
    for value in ["a", "b", "c", "d"]:
        await call(http, broker, "POST", "/q/leak", data={"value": value, "ttl": "600"})
    await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "leak"})
    vals = Keys(backend.prefix).queue_key("leak", "vals")
    assert await raw_redis.hlen(vals) == 4

    await call(http, broker, "GET", "/q/leak")
    await call(http, broker, "GET", "/?queue=leak")
    await call(http, broker, "POST", "/queue", json={"cmd": "take", "queue": "leak"})
    assert await raw_redis.hkeys(vals) == ["4"]
    await call(http, broker, "GET", "/q/leak")

    left = await keys_of(raw_redis, backend.prefix, "leak")
    assert set(left) <= {"seq", "meta"}, left
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_an_expired_message_leaves_no_null_behind(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend, raw_redis: Redis
) -> None:
    await call(http, broker, "POST", "/q/ttl", data={"value": "short-1", "ttl": "0.2"})
    await call(http, broker, "POST", "/q/ttl", data={"value": "stays"})
    await call(http, broker, "POST", "/q/ttl", data={"value": "short-2", "ttl": "0.2"})
    await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "ttl"})

    async def expired() -> bool:
        return await queue_len(http, broker, "ttl") == 1

    await async_wait_until(expired, 10, "the expired messages stop counting")

    peek = await call(http, broker, "GET", "/j/ttl")
    soft = await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "ttl"})
    taken = await call(http, broker, "GET", "/q/ttl")
    empty = await call(http, broker, "GET", "/q/ttl")
    assert "short-" not in peek.body.decode() and "stays" in peek.body.decode()
    assert_json(soft, {"queue": "ttl", "value": "stays", "key": "ttl:2", "count": 1})
    assert_json(taken, {"key": "ttl:2", "value": "stays", "count": 1})
    assert (empty.status, empty.body) == (204, b"")
    left = await keys_of(raw_redis, backend.prefix, "ttl")
    assert set(left) <= {"seq", "meta"}, left
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_delete_leaves_no_key_of_the_queue_behind(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend, raw_redis: Redis
) -> None:
    await call(http, broker, "POST", "/q/gone", data={"value": "a"})
    await call(http, broker, "POST", "/q/gone", data={"value": "b", "ttl": "600"})
    await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "gone"})
    await call(http, broker, "POST", "/p/gone", data={"policy": "roundrobin"})
    await call(http, broker, "POST", "/control/gone", data={"status": "stop"})
    await call(http, broker, "POST", "/q/kept", data={"value": "k"})
    keys = Keys(backend.prefix)
    assert len(await keys_of(raw_redis, backend.prefix, "gone")) >= 5

    purged = await call(http, broker, "DELETE", "/q/gone")

    assert_json(purged, {"queue": "gone", "status": 1, "purged": 2})
    # Only the id counter stays: keys are never reused (SPEC §3.2, §4).
    assert await keys_of(raw_redis, backend.prefix, "gone") == {"seq": "string"}
    assert await raw_redis.smembers(keys.registry) == {"kept"}
    assert await raw_redis.zscore(keys.timers, "gone") is None
    assert_json(
        await call(http, broker, "GET", "/q/", headers={"Accept": "application/json"}),
        {"queues": ["kept"], "count": 1},
    )
    assert await queue_len(http, broker, "kept") == 1


async def test_a_stop_on_an_empty_queue_is_not_undone_by_the_first_message(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    stop = await call(http, broker, "POST", "/control/fresh", data={"status": "stop"})

    added = await call(http, broker, "POST", "/q/fresh", data={"value": "first"})

    assert_json(stop, {"stat": {"queue": "fresh", "status": 0}})
    assert_key(added, "fresh:1")
    status = (await call(http, broker, "GET", "/control/fresh")).json()["status"]
    assert status == {"queue": "fresh", "status": 0}
    stats = (await call(http, broker, "GET", "/stats/fresh")).json()
    assert (stats["status"], stats["len"]) == ("stopped", 1)
    await call(http, broker, "GET", "/q/fresh")
    assert (await call(http, broker, "GET", "/stats/fresh")).json()["status"] == "stopped"


# ---------------------------------------------------------------- JSONP framing

JSONP_FRAME = re.compile(rb"\A([A-Za-z_$][A-Za-z0-9_$.]*)\((.*)\);\r\n\Z", re.DOTALL)
AWKWARD = 'quote" backslash\\ </script> \u2028\u2029 \x00 é 😀'


async def jsonp_answers(
    http: aiohttp.ClientSession, broker: Broker, callback: str
) -> list[tuple[str, Answer]]:
    """One JSONP answer from every JSON route that takes a callback, GET and POST."""
    cb = f"callback={callback}"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/q/jp?{cb}", {"data": {"value": AWKWARD}}),
        ("POST", "/", {"data": {"queue": "jp", "value": AWKWARD, "callback": callback}}),
        ("POST", f"/queue?{cb}", {"json": {"cmd": "add", "queue": "jp", "value": AWKWARD}}),
        (
            "POST",
            "/queue",
            {"data": {"body": '{"cmd": "get", "queue": "jp"}', "callback": callback}},
        ),
        ("GET", f"/q/jp?{cb}", {}),
        ("GET", f"/?queue=jp&{cb}", {}),
        ("GET", f"/q/?{cb}", {}),
        ("GET", f"/p/jp?{cb}", {}),
        ("POST", f"/p/jp?{cb}", {"data": {"policy": "broadcast"}}),
        ("GET", f"/control/jp?{cb}", {}),
        ("POST", f"/control/jp?{cb}", {"data": {"status": "start"}}),
        ("GET", f"/control/?{cb}", {}),
        ("GET", f"/stats/?{cb}", {}),
        ("GET", f"/stats/jp?{cb}", {}),
        ("GET", f"/livez?{cb}", {}),
        ("GET", f"/healthz?{cb}", {}),
    ]
    return [
        (f"{method} {path}", await call(http, broker, method, path, **kw))
        for method, path, kw in requests
    ]


@pytest.mark.parametrize("callback", ["cb", "jQuery_1.cb"])
async def test_jsonp_has_one_framing_on_every_route_and_it_is_valid_javascript(
    http: aiohttp.ClientSession, broker: Broker, callback: str
) -> None:
    answers = await jsonp_answers(http, broker, callback)

    payloads = []
    for route, answer in answers:
        assert (answer.status, answer.content_type) == (200, JS_CT), (route, answer)
        frame = JSONP_FRAME.match(answer.body)
        assert frame is not None, (route, answer)
        assert frame.group(1).decode() == callback
        payloads.append(json.loads(frame.group(2)))
    assert payloads[0] == "jp:1" and payloads[4]["value"] == AWKWARD
    if shutil.which("node"):
        assert run_in_node(callback, [a.body for _, a in answers]) == payloads


def run_in_node(callback: str, bodies: list[bytes]) -> list[Any]:
    """Evaluate each JSONP answer as a script in Node and collect what the callback got."""
    head, _, last = callback.rpartition(".")
    define = f"var {head} = {{{last}: got}};" if head else f"var {callback} = got;"
    if "." in head:
        raise AssertionError("one level of dots is enough for this test")
    program = (
        "const vm = require('vm'); const seen = [];"
        "const got = (x) => seen.push(x);"
        f"const ctx = vm.createContext({{got}}); vm.runInContext({json.dumps(define)}, ctx);"
        "for (const src of JSON.parse(require('fs').readFileSync(0, 'utf8'))) {"
        "  vm.runInContext(src, ctx); }"
        "process.stdout.write(JSON.stringify(seen));"
    )
    sources = json.dumps([body.decode() for body in bodies])
    done = subprocess.run(
        ["node", "-e", program], input=sources.encode(), capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    result: list[Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------- Redis errors


async def test_redis_error_replies_never_reach_a_client(
    broker: Broker, backend: Backend, raw_redis: Redis
) -> None:
    keys = Keys(backend.prefix)
    async with no_5xx_session(allowed=frozenset({500})) as http:
        await call(http, broker, "POST", "/q/broken", data={"value": "v"})
        await raw_redis.delete(keys.queue_key("broken", "vals"))
        await raw_redis.set(keys.queue_key("broken", "vals"), "not a hash")
        await raw_redis.set(keys.queue_key("broken", "meta"), "not a hash either")
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/q/broken", {}),
            ("GET", "/?queue=broken", {}),
            ("POST", "/q/broken", {"data": {"value": "w"}}),
            ("POST", "/", {"data": {"queue": "broken", "value": "w"}}),
            ("POST", "/queue", {"json": {"cmd": "add", "queue": "broken", "value": "w"}}),
            ("POST", "/queue", {"json": {"cmd": "get", "queue": "broken"}}),
            ("POST", "/queue", {"json": {"cmd": "take", "queue": "broken"}}),
            ("POST", "/queue", {"json": {"cmd": "del", "queue": "broken", "key": "broken:1"}}),
            ("GET", "/p/broken", {}),
            ("POST", "/p/broken", {"data": {"policy": "roundrobin"}}),
            ("GET", "/control/broken", {}),
            ("POST", "/control/broken", {"data": {"status": "stop"}}),
            ("GET", "/stats/broken", {}),
            ("GET", "/stats/", {}),
            ("GET", "/j/broken", {}),
            ("DELETE", "/q/broken", {}),
        ]

        for method, path, kw in requests:
            answer = await call(http, broker, method, path, **kw)
            text = answer.body.decode(errors="replace")
            for leak in ["ERR", "WRONGTYPE", "Operation against a key", "user_script"]:
                assert leak not in text, (method, path, answer)
            if answer.status == 500:
                assert answer.body == b'{"error": "internal error"}\r\n', (method, path)
