"""The queue listings (SPEC §3.2, §3.5; issue 9): 1.x's shapes, paged with ``limit`` and
``after``, ``count`` the total and ``next`` the cursor of the next page; purges that keep
counting keys; dead-letter queues that take no max_deliveries. A real broker per backend."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from restmq.http.listing import DEFAULT_LIMIT, MAX_LIMIT
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.http_support import assert_error, assert_json, assert_key, call, stats_entry

JSON_ACCEPT = {"Accept": "application/json"}
NAMES = ["e", "a", "d", "ü", "b", "c"]  # listed in code point order: a b c d e ü


async def _add(http: aiohttp.ClientSession, broker: Broker, queue: str, value: str = "v") -> str:
    answer = await call(http, broker, "POST", f"/q/{queue}", data={"value": value})
    assert answer.status == 200, answer
    return answer.body.decode().strip()


async def _pages(
    http: aiohttp.ClientSession, broker: Broker, path: str, limit: int
) -> list[dict[str, Any]]:
    """Every page of a listing, following ``next`` until a page has none."""
    pages: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": str(limit)}
    while True:
        answer = await call(http, broker, "GET", path, params=params, headers=JSON_ACCEPT)
        assert answer.status == 200, answer
        pages.append(answer.json())
        if "next" not in pages[-1]:
            return pages
        params["after"] = pages[-1]["next"]


def _names(page: dict[str, Any]) -> list[str]:
    """The queue names of a page: a list (``/q/``) or an object's keys (the others)."""
    return list(page["queues"])


async def test_control_slash_lists_every_status_in_the_1x_shape(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    await _add(http, broker, "running")
    await call(http, broker, "POST", "/control/paused", data={"status": "stop"})

    for path in ["/control/", "/control"]:
        assert_json(await call(http, broker, "GET", path), {
            "redis": backend.url,
            "queues": {
                "paused": {"queue": "paused", "status": 0},
                "running": {"queue": "running", "status": 1},
            },
            "count": 2,
        })


async def test_q_slash_answers_the_names_and_the_count(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for name in ["b", "a"]:
        await _add(http, broker, name)

    answer = await call(http, broker, "GET", "/q/", headers=JSON_ACCEPT)

    assert_json(answer, {"queues": ["a", "b"], "count": 2})


@pytest.mark.parametrize("path", ["/q/", "/control/", "/stats/"])
async def test_a_listing_pages_through_every_queue_exactly_once(
    http: aiohttp.ClientSession, broker: Broker, path: str
) -> None:
    for name in NAMES:
        await _add(http, broker, name)

    pages = await _pages(http, broker, path, limit=4)

    assert [_names(page) for page in pages] == [["a", "b", "c", "d"], ["e", "ü"]]
    assert [page["count"] for page in pages] == [6, 6]
    assert pages[0]["next"] == "d"


async def test_a_page_of_stats_holds_each_queues_stats(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    for name in NAMES:
        await _add(http, broker, name)
    await _add(http, broker, "c", "second")

    answer = await call(http, broker, "GET", "/stats/", params={"after": "b", "limit": "2"})

    assert_json(answer, {
        "queues": {"c": stats_entry("c", 2), "d": stats_entry("d", 1)},
        "redis": backend.url,
        "count": 6,
        "next": "d",
    })


async def test_the_last_page_has_no_next_and_a_cursor_past_the_end_is_empty(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for name in ["a", "b"]:
        await _add(http, broker, name)

    exact = await call(http, broker, "GET", "/q/?limit=2", headers=JSON_ACCEPT)
    past = await call(http, broker, "GET", "/q/?after=zzz", headers=JSON_ACCEPT)

    assert_json(exact, {"queues": ["a", "b"], "count": 2})
    assert_json(past, {"queues": [], "count": 2})


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_LIMIT + 1), "ten", "1.5"])
@pytest.mark.parametrize("path", ["/q/", "/control/", "/stats/"])
async def test_a_listing_refuses_a_limit_out_of_range(
    http: aiohttp.ClientSession, broker: Broker, path: str, limit: str
) -> None:
    answer = await call(http, broker, "GET", path, params={"limit": limit}, headers=JSON_ACCEPT)

    assert "limit" in assert_error(answer, 400)


async def test_the_default_page_is_documented_size(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    assert DEFAULT_LIMIT == 1000  # docs/api.md says so
    await _add(http, broker, "one")
    answer = await call(http, broker, "GET", "/stats", params={"limit": str(MAX_LIMIT)})
    assert answer.json()["count"] == 1


async def test_the_dashboard_feed_is_paged_like_stats(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for name in NAMES:
        await _add(http, broker, name)

    async with http.get(f"{broker.url}/events/stats", params={"limit": "2", "after": "a"}) as r:
        assert r.status == 200
        async for line in r.content:
            if line.startswith(b"data: "):
                event = json.loads(line[len(b"data: "):])
                break

    assert (list(event["queues"]), event["count"], event["next"]) == (["b", "c"], 6, "c")


async def test_a_purge_keeps_counting_keys_and_the_queue_is_listed_again(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    assert await _add(http, broker, "again") == "again:1"
    assert (await call(http, broker, "DELETE", "/q/again")).json()["status"] == 1
    assert_json(await call(http, broker, "GET", "/q/", headers=JSON_ACCEPT),
                {"queues": [], "count": 0})

    assert_key(await call(http, broker, "POST", "/q/again", data={"value": "x"}), "again:2")

    assert_json(await call(http, broker, "GET", "/q/", headers=JSON_ACCEPT),
                {"queues": ["again"], "count": 1})


async def test_a_late_del_of_a_key_from_before_a_purge_does_not_hit_a_new_message(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await _add(http, broker, "late", "old")
    await call(http, broker, "DELETE", "/q/late")
    assert await _add(http, broker, "late", "new") == "late:2"

    deleted = await call(http, broker, "POST", "/queue",
                         json={"cmd": "del", "queue": "late", "key": "late:1"})

    assert_json(deleted, {"queue": "late", "deleted": False, "key": "late:1"})
    taken = await call(http, broker, "GET", "/q/late")
    assert_json(taken, {"key": "late:2", "value": "new", "count": 0})
