"""``Idempotency-Key`` on every producing route (SPEC §3.8): a retry adds nothing and gets the
first attempt's key(s); the same key with another request is refused; bad keys are 400s."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.helpers.broker import Broker
from tests.http_support import assert_error, assert_json, assert_key, call, queue_len

KEY = "Idempotency-Key"


async def twice(http: aiohttp.ClientSession, broker: Broker, path: str, **kw: Any) -> list[Any]:
    return [await call(http, broker, "POST", path, **kw) for _ in range(2)]


async def test_a_retried_post_with_the_same_key_adds_nothing_and_answers_the_same_key(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for answer in await twice(http, broker, "/q/once", data={"value": "v"}, headers={KEY: "k1"}):
        assert_key(answer, "once:1")
    assert_key(await call(http, broker, "POST", "/q/once", data={"value": "v"}), "once:2")
    assert await queue_len(http, broker, "once") == 2


async def test_post_root_and_raw_bodies_honour_the_key(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    form = {"queue": "root", "value": "v"}
    for answer in await twice(http, broker, "/", data=form, headers={KEY: "root-1"}):
        assert_key(answer, "root:1")
    raw = {KEY: "raw-1", "Content-Type": "text/plain"}
    for answer in await twice(http, broker, "/q/root", data=b"body", headers=raw):
        assert_key(answer, "root:2")
    assert await queue_len(http, broker, "root") == 2


async def test_a_retried_batch_answers_the_first_batch_keys(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    body = {"values": ["a", "b", "c"], "idempotency_key": "batch-1"}
    for answer in await twice(http, broker, "/q/batch", json=body):
        assert_json(answer, {"queue": "batch", "keys": ["batch:1", "batch:2", "batch:3"]})
    assert await queue_len(http, broker, "batch") == 3


async def test_the_same_key_on_another_queue_is_another_request(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    assert_key(await call(http, broker, "POST", "/q/a", data={"value": "v"},
                          headers={KEY: "shared"}), "a:1")
    assert_key(await call(http, broker, "POST", "/q/b", data={"value": "v"},
                          headers={KEY: "shared"}), "b:1")


async def test_the_same_key_with_another_value_is_a_422_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    headers = {KEY: "reused"}
    assert_key(await call(http, broker, "POST", "/q/c", data={"value": "one"}, headers=headers),
               "c:1")
    for data in ({"value": "two"}, {"value": "one", "ttl": "5"}):
        message = assert_error(
            await call(http, broker, "POST", "/q/c", data=data, headers=headers), 422
        )
        assert "Idempotency-Key" in message
    assert await queue_len(http, broker, "c") == 1


@pytest.mark.parametrize(
    "bad", ["", " ", "x" * 256, "caf\u00e9", "tab\there", "new\nline"], ids=repr
)
async def test_a_malformed_key_is_a_400_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker, bad: str
) -> None:
    body = {"value": "v", "idempotency_key": bad}
    assert_error(await call(http, broker, "POST", "/q/bad", json=body), 400)
    assert await queue_len(http, broker, "bad") == 0


async def test_a_header_and_a_field_that_differ_are_a_400(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    body = {"value": "v", "idempotency_key": "one"}
    answer = await call(http, broker, "POST", "/q/d", json=body, headers={KEY: "two"})
    assert_error(answer, 400)
    assert await queue_len(http, broker, "d") == 0


async def test_the_json_protocol_takes_the_field_and_the_header(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    command = {"cmd": "add", "queue": "j", "value": "v", "idempotency_key": "j-1"}
    for answer in await twice(http, broker, "/queue", json=command):
        assert_json(answer, {"queue": "j", "value": "v", "key": "j:1"})
    plain = {"cmd": "add", "queue": "j", "value": "w"}
    form = {"body": json.dumps(plain)}
    for answer in await twice(http, broker, "/queue", data=form, headers={KEY: "j-2"}):
        assert_json(answer, {"queue": "j", "value": "w", "key": "j:2"})
    batch = {"cmd": "add", "queue": "j", "values": ["x", "y"], "idempotency_key": "j-3"}
    for answer in await twice(http, broker, "/queue", json=batch):
        assert_json(answer, {"queue": "j", "keys": ["j:3", "j:4"]})
    assert await queue_len(http, broker, "j") == 4


async def test_the_json_protocol_reports_a_reused_key_as_a_command_error(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    first = {"cmd": "add", "queue": "k", "value": "v", "idempotency_key": "k-1"}
    assert_json(await call(http, broker, "POST", "/queue", json=first),
                {"queue": "k", "value": "v", "key": "k:1"})
    other = {**first, "value": "other"}
    answer = await call(http, broker, "POST", "/queue", json=other)
    assert answer.status == 200 and "Idempotency-Key" in answer.json()["error"]
    assert await queue_len(http, broker, "k") == 1


async def test_websocket_commands_take_the_field(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    """The socket is also a consumer of its queue: deliveries (key and value only) and command
    answers (with the queue) share it."""
    command = {"cmd": "add", "queue": "w", "value": "v", "idempotency_key": "w-1"}
    async with http.ws_connect(f"{broker.url}/ws/w") as ws:
        answers, deliveries = [], []
        for _ in range(2):
            await ws.send_str(json.dumps(command))
        while len(answers) < 2:
            frame = json.loads((await ws.receive(timeout=10)).data)
            (answers if "queue" in frame else deliveries).append(frame)
    assert answers == [{"queue": "w", "value": "v", "key": "w:1"}] * 2
    assert deliveries in ([], [{"key": "w:1", "value": "v"}])
