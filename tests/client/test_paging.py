"""The client reads every page of the paged listings (docs/api.md#listings, docs/client.md).

``GET /q/`` and ``GET /stats/`` answer at most 1000 queues per request, with ``next`` when
more follow. First the walk itself, with no I/O (``calls.Walk`` over answers given by hand):
the requests it makes, the items it gathers, and the cursors it refuses. Then a real broker
holding more than one page of queues (1000 and a few, created by one batch of concurrent
requests): ``queues()`` and ``stats()`` of both clients and ``restmq queues|stats`` return
every one of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import pytest

from restmq.client import AsyncClient, Client, calls
from restmq.client.calls import Answer, Call, Page, Walk, finish
from restmq.errors import UnexpectedAnswer
from restmq.http.listing import MAX_LIMIT
from tests.client.test_cli import restmq
from tests.helpers.broker import Broker

MANY = [f"bulk-{n:04d}" for n in range(MAX_LIMIT + 1)] + ["a b", "é ✓", "zz"]
STATS = {"len": 1, "status": "started", "policy": "broadcast", "consumers": 0, "leased": 0,
         "delayed": 0, "dead": 0}


def walk_over(walk: Walk[Any], answers: list[dict[str, Any]]) -> list[Call[Any]]:
    """Give ``walk`` the answers in turn; the calls it made. It must stop after the last."""
    made: list[Call[Any]] = []
    call: Call[Page[Any]] | None = walk.first()
    for body in answers:
        assert call is not None, "the walk stopped early"
        made.append(call)
        call = walk.then(finish(call, Answer(200, json.dumps(body))))
    assert call is None, "the walk went on after the last page"
    return made


def stats_body(names: list[str], **extra: Any) -> dict[str, Any]:
    return {"queues": {n: {"name": n, **STATS} for n in names}, "redis": "r", **extra}


@pytest.mark.parametrize(
    "limit, answers, queries",
    [
        (None, [{"queues": ["a", "b"], "count": 2}], [{}]),
        (None, [{"queues": ["a", "b"]}], [{}]),  # a broker that does not page (1.x)
        (None, [{"queues": [], "count": 0}], [{}]),
        (
            None,
            [{"queues": ["a", "b"], "count": 3, "next": "b"}, {"queues": ["c"], "count": 3}],
            [{}, {"after": "b"}],
        ),
        (
            1,
            [{"queues": ["a"], "count": 3, "next": "a"},
             {"queues": ["b b"], "count": 3, "next": "b b"},
             {"queues": ["é"], "count": 3}],
            [{"limit": "1"}, {"after": "a", "limit": "1"}, {"after": "b b", "limit": "1"}],
        ),
    ],
)
def test_the_queue_walk_follows_next_until_a_page_has_none(
    limit: int | None, answers: list[dict[str, Any]], queries: list[dict[str, str]]
) -> None:
    walk = Walk(calls.queue_page, limit)
    made = walk_over(walk, answers)
    assert [call.query for call in made] == queries
    assert {(call.method, call.path, call.headers["Accept"]) for call in made} == {
        ("GET", "/q/", "application/json")
    }
    assert walk.items == [name for body in answers for name in body["queues"]]


def test_the_stats_walk_gathers_every_page() -> None:
    walk = Walk(calls.stats_page)
    pages = [stats_body(["a", "b"], count=3, next="b"), stats_body(["c"], count=3)]
    made = walk_over(walk, pages)
    assert [call.query for call in made] == [{}, {"after": "b"}]
    assert {(call.method, call.path) for call in made} == {("GET", "/stats/")}
    assert [stats.name for stats in walk.items] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "page",
    [
        {"queues": ["a"], "next": ""},  # no move from the start
        {"queues": ["a"], "next": 7},
        {"queues": ["a"], "next": ["a"]},
    ],
)
def test_a_next_that_is_no_name_is_an_unexpected_answer(page: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedAnswer):
        walk_over(Walk(calls.queue_page), [page])


@pytest.mark.parametrize("cursor", ["b", "a", ""])
def test_a_next_that_does_not_move_forward_is_an_unexpected_answer(cursor: str) -> None:
    """A broker naming the same cursor (or an earlier one) again would be walked for ever."""
    walk = Walk(calls.queue_page)
    first = walk.then(Page(["a", "b"], "b"))
    assert first is not None and first.query == {"after": "b"}
    answer = Answer(200, json.dumps({"queues": ["b"], "next": cursor}))
    with pytest.raises(UnexpectedAnswer):
        finish(first, answer)


# ---------------------------------------------------------------------------- a real broker


async def _add_each(url: str, names: list[str]) -> None:
    """One message in each queue, all requests at once. (aiohttp: httpx's pool slows down
    with a thousand requests waiting for a connection, 0.3 s here against 2-3 s.)"""

    async def add(http: aiohttp.ClientSession, name: str) -> None:
        async with http.post(f"{url}/q/{quote(name, safe='')}", data={"value": "v"}) as answer:
            assert answer.status == 200, (name, await answer.text())

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(add(http, name) for name in names))


@pytest.fixture(scope="module")
def many(shared_broker: Broker) -> Iterator[Broker]:
    """The module's broker holding the queues ``MANY``: more than one page of them."""
    asyncio.run(_add_each(shared_broker.url, MANY))
    first = httpx.get(shared_broker.url + "/q/", headers={"Accept": "application/json"}).json()
    assert (len(first["queues"]), first["count"], first["next"]) == (
        MAX_LIMIT, len(MANY), sorted(MANY)[MAX_LIMIT - 1]
    ), "the broker should answer a first page, not every queue"
    yield shared_broker


def _check_stats(found: dict[str, Any], stats_of: Callable[[Any], dict[str, Any]]) -> None:
    assert sorted(found) == sorted(MANY)
    assert all(stats_of(stats)["len"] == 1 for stats in found.values())


def test_the_sync_client_lists_every_queue_of_every_page(many: Broker) -> None:
    with Client(many.url) as client:
        assert client.queues() == sorted(MANY)
        _check_stats(client.stats(), lambda stats: {"len": stats.len})


async def test_the_async_client_lists_every_queue_of_every_page(many: Broker) -> None:
    async with AsyncClient(many.url) as client:
        assert await client.queues() == sorted(MANY)
        _check_stats(await client.stats(), lambda stats: {"len": stats.len})


def test_the_cli_lists_every_queue_of_every_page(many: Broker) -> None:
    assert json.loads(restmq("queues", "--json", server=many.url).stdout) == sorted(MANY)
    assert restmq("queues", server=many.url).stdout.splitlines() == sorted(MANY)
    _check_stats(json.loads(restmq("stats", "--json", server=many.url).stdout), dict)
    rows = restmq("stats", server=many.url).stdout.splitlines()
    assert len(rows) == 1 + len(MANY)
