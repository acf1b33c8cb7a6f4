"""The collectd routes over real HTTP, against a real broker process (SPEC §5).

The bodies (``samples``) have the shapes collectd 5.12's ``write_http`` sent in a captured run
(``Format "Command"`` and ``Format "JSON"``); the notification is the original README's. What
lands in the queues is consumed with ``GET /q/<queue>`` and checked whole; every refused
request must leave both queues empty.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.adapters.daemons import Daemon, http_answers, storage_args
from tests.adapters.samples import (
    COLLECTD_JSON,
    NOTIFICATION,
    NOTIFICATION_RECORDS,
    PUTVAL,
    PUTVAL_RECORDS,
)
from tests.conftest import Backend
from tests.helpers.broker import Broker, free_port

TEXT = "text/plain"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def collectd_broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory("--collectd")


async def post(
    http: aiohttp.ClientSession, url: str, body: str | bytes, content_type: str | None
) -> tuple[int, str, str]:
    """POST a body with exactly this Content-Type (none at all when None)."""
    headers = {"Content-Type": content_type} if content_type else {}
    skip = () if content_type else ("Content-Type",)
    data = body.encode() if isinstance(body, str) else body
    async with http.post(url, data=data, headers=headers, skip_auto_headers=skip) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def take_all(http: aiohttp.ClientSession, broker: Broker, queue: str) -> list[Any]:
    """Consume the queue with ``GET /q/<queue>`` until 204; returns the answers."""
    taken: list[Any] = []
    while True:
        async with http.get(f"{broker.url}/q/{queue}") as response:
            if response.status == 204:
                return taken
            assert response.status == 200, await response.text()
            taken.append(await response.json())


async def assert_nothing_queued(http: aiohttp.ClientSession, broker: Broker) -> None:
    assert await take_all(http, broker, "collectd_data") == []
    assert await take_all(http, broker, "collectd_event") == []


async def test_putval_lines_become_one_json_list_in_collectd_data(
    http: aiohttp.ClientSession, collectd_broker: Broker
) -> None:
    answer = await post(http, collectd_broker.url + "/collectd/data", PUTVAL, TEXT)
    assert answer == (200, "text/plain; charset=utf-8", "collectd_data:1\r\n")
    [taken] = await take_all(http, collectd_broker, "collectd_data")
    assert (taken["key"], taken["count"]) == ("collectd_data:1", 0)
    assert json.loads(taken["value"]) == PUTVAL_RECORDS


async def test_collectd_json_is_stored_exactly_as_sent(
    http: aiohttp.ClientSession, collectd_broker: Broker
) -> None:
    answer = await post(http, collectd_broker.url + "/collectd/data", COLLECTD_JSON, JSON)
    assert answer[0] == 200, answer
    [taken] = await take_all(http, collectd_broker, "collectd_data")
    assert taken["value"] == COLLECTD_JSON


@pytest.mark.parametrize("content_type", [TEXT, FORM, f"{TEXT}; charset=utf-8"])
async def test_a_notification_lands_in_collectd_event_as_a_list_of_one_key_objects(
    http: aiohttp.ClientSession, collectd_broker: Broker, content_type: str
) -> None:
    answer = await post(http, collectd_broker.url + "/collectd/event", NOTIFICATION, content_type)
    assert answer == (200, "text/plain; charset=utf-8", "collectd_event:1\r\n")
    [taken] = await take_all(http, collectd_broker, "collectd_event")
    assert json.loads(taken["value"]) == NOTIFICATION_RECORDS


async def test_a_callback_wraps_the_key_as_jsonp(
    http: aiohttp.ClientSession, collectd_broker: Broker
) -> None:
    url = collectd_broker.url + "/collectd/data?callback=got"
    answer = await post(http, url, PUTVAL, TEXT)
    assert answer == (200, "application/javascript; charset=utf-8", 'got("collectd_data:1");\r\n')


UNSUPPORTED = [
    ("/collectd/data", PUTVAL, None),
    ("/collectd/data", PUTVAL, "application/octet-stream"),
    ("/collectd/data", PUTVAL, FORM),
    ("/collectd/data", COLLECTD_JSON, "application/xml"),
    ("/collectd/data", COLLECTD_JSON, "text/json"),
    ("/collectd/event", NOTIFICATION, JSON),
    ("/collectd/event", NOTIFICATION, "application/octet-stream"),
]


async def test_other_content_types_get_415_and_queue_nothing(
    http: aiohttp.ClientSession, collectd_broker: Broker, subtests: pytest.Subtests
) -> None:
    for path, body, content_type in UNSUPPORTED:
        with subtests.test(path=path, content_type=content_type):
            status, answer_type, text = await post(http, collectd_broker.url + path, body,
                                                   content_type)
            assert (status, answer_type) == (415, "application/json; charset=utf-8"), text
            assert "unsupported content type" in json.loads(text)["error"]
    await assert_nothing_queued(http, collectd_broker)


BROKEN: list[tuple[str, str | bytes, str]] = [
    ("/collectd/data", "", TEXT),
    ("/collectd/data", "\r\n\r\n", TEXT),
    ("/collectd/data", "hello world\r\n", TEXT),
    ("/collectd/data", "PUTVAL restmq-test/load 1:2\r\n", TEXT),
    ("/collectd/data", "PUTVAL restmq-test/load/load 1:abc\r\n", TEXT),
    ("/collectd/data", PUTVAL + "PUTVAL restmq-test/load/load\r\n", TEXT),  # last line bad
    ("/collectd/data", PUTVAL.encode() + b"\xff\xfe", TEXT),
    ("/collectd/data", PUTVAL.replace("load/load", "lo\x00ad/load"), TEXT),
    ("/collectd/data", "", JSON),
    ("/collectd/data", "[]", JSON),
    ("/collectd/data", COLLECTD_JSON[:-2], JSON),
    ("/collectd/data", '{"host": "restmq-test"}', JSON),
    ("/collectd/data", '[{"host": "restmq-test", "plugin": "load"}]', JSON),
    ("/collectd/data", COLLECTD_JSON.replace("3.54736328125", "NaN"), JSON),
    ("/collectd/data", b"[\xff]", JSON),
    ("/collectd/event", "", TEXT),
    ("/collectd/event", "just some text without headers", TEXT),
    ("/collectd/event", "\n\nonly the message text", FORM),
]


async def test_broken_payloads_get_400_and_queue_nothing(
    http: aiohttp.ClientSession, collectd_broker: Broker, subtests: pytest.Subtests
) -> None:
    for path, body, content_type in BROKEN:
        with subtests.test(path=path, body=body[:40], content_type=content_type):
            status, answer_type, text = await post(http, collectd_broker.url + path, body,
                                                   content_type)
            assert (status, answer_type) == (400, "application/json; charset=utf-8"), text
            assert json.loads(text)["error"]
    await assert_nothing_queued(http, collectd_broker)


async def test_payloads_over_the_size_limits_get_413_and_queue_nothing(
    http: aiohttp.ClientSession, broker_factory: Callable[..., Broker]
) -> None:
    broker = broker_factory("--collectd", "--max-body-size", "4096", "--max-message-size", "2048")
    line = "PUTVAL restmq-test/load/load interval=1.000 1795840549.195:3.42:2.19:1.10\r\n"
    too_long_body = line * 60  # over 4096 bytes
    records_too_large = line * 20  # 1.5 KiB of text, but its JSON list is over 2048 bytes
    json_too_large = "[" + ",".join([COLLECTD_JSON[1:-1]] * 10) + "]"  # 2.7 KiB
    for body, content_type in [(too_long_body, TEXT), (records_too_large, TEXT),
                               (json_too_large, JSON), (NOTIFICATION * 20, TEXT)]:
        path = "/collectd/event" if body.startswith("Severity") else "/collectd/data"
        status, _, text = await post(http, broker.url + path, body, content_type)
        assert status == 413, text
    await assert_nothing_queued(http, broker)
    assert (await post(http, broker.url + "/collectd/data", line * 10, TEXT))[0] == 200


async def test_the_collectd_routes_are_absent_without_the_flag(
    http: aiohttp.ClientSession, broker_factory: Callable[..., Broker]
) -> None:
    broker = broker_factory()
    for path, body, content_type in [("/collectd/data", PUTVAL, TEXT),
                                     ("/collectd/event", NOTIFICATION, TEXT)]:
        status, _, text = await post(http, broker.url + path, body, content_type)
        assert status == 404, text


async def test_the_restmq_collectd_command_serves_the_collectd_routes(
    http: aiohttp.ClientSession, tmp_path: Path, backend: Backend
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["collectd", "--port", str(port), *storage_args(backend.url, backend.prefix)]

    daemon = Daemon(args, tmp_path / "collectd.log").start(lambda: http_answers(url + "/livez"))
    try:
        answer = await post(http, url + "/collectd/event", NOTIFICATION, FORM)
        assert answer[0] == 200, answer
        async with http.get(url + "/q/collectd_event") as response:
            taken = await response.json()
        assert json.loads(taken["value"]) == NOTIFICATION_RECORDS
    finally:
        assert daemon.stop() == 0, daemon.log()
