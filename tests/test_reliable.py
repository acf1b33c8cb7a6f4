"""Reliable consumption over real HTTP (SPEC §4, issue 4): leases with reserve / ack / nack /
extend, expired leases, delays, batches, bad input and the stats, through both wire protocols.

Every lease test runs through the REST routes (``POST /q/<queue>/reserve|ack|nack|extend``,
errors as HTTP statuses) and through the JSON protocol (``POST /queue``, errors as 200
``{"error": ...}``), on both storage backends, against one real broker per module and backend.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import async_wait_until
from tests.http_support import (
    BACKENDS,
    JSON_CT,
    Answer,
    Served,
    assert_error,
    assert_json,
    call,
    no_5xx_session,
    serve_module,
    stats_entry,
)

SHORT_LEASE = 0.3  # seconds; the broker's sweeper requeues within ~0.1 s of the deadline


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with serve_module(request, tmp_path_factory) as served:
        yield served


@pytest.fixture
def backend(served: Served) -> Backend:
    """The module's backend, emptied for this test."""
    served.wipe()
    return served.backend


@pytest.fixture
def broker(served: Served, backend: Backend) -> Broker:
    return served.broker


@pytest.fixture
async def http(raw_redis: Redis, backend: Backend) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that fails the test on any 5xx; the keyspace is checked after every test."""
    async with no_5xx_session() as session:
        yield session
    await assert_no_orphans(raw_redis, backend.prefix)


# ---------------------------------------------------------------- the two wire protocols


@dataclass
class Outcome:
    """One lease command's answer, whichever protocol carried it."""

    answer: Answer
    body: dict[str, Any] | None  # None: nothing to reserve (REST 204, JSON "empty queue")

    @property
    def error(self) -> str | None:
        return None if self.body is None else self.body.get("error")


class Wire:
    """The lease commands over one protocol: REST routes or JSON commands on ``POST /queue``."""

    name = ""

    def __init__(self, http: aiohttp.ClientSession, broker: Broker, queue: str) -> None:
        self.http, self.broker, self.queue = http, broker, queue

    async def send(self, command: str, **fields: Any) -> Outcome:
        raise NotImplementedError

    def assert_refused(self, outcome: Outcome, rest_status: int) -> str:
        """The command was refused with a clear error message; returns the message."""
        raise NotImplementedError

    async def reserve(self, **fields: Any) -> dict[str, Any] | None:
        outcome = await self.send("reserve", **fields)
        assert outcome.error is None, outcome.answer
        return outcome.body

    async def reserve_one(self, **fields: Any) -> dict[str, Any]:
        found = await self.reserve(**fields)
        assert found is not None, "nothing to reserve"
        return found

    async def ok(self, command: str, lease: dict[str, Any], **fields: Any) -> dict[str, Any]:
        outcome = await self.send(command, key=lease["key"], receipt=lease["receipt"], **fields)
        assert outcome.error is None and outcome.body is not None, outcome.answer
        return outcome.body


class Rest(Wire):
    name = "rest"

    async def send(self, command: str, **fields: Any) -> Outcome:
        answer = await call(
            self.http, self.broker, "POST", f"/q/{self.queue}/{command}", data=_form(fields)
        )
        if answer.status == 204:
            assert answer.body == b"", answer
            return Outcome(answer, None)
        return Outcome(answer, answer.json())

    def assert_refused(self, outcome: Outcome, rest_status: int) -> str:
        return assert_error(outcome.answer, rest_status)


class Json(Wire):
    name = "json"

    async def send(self, command: str, **fields: Any) -> Outcome:
        body = {"cmd": command, "queue": self.queue, **fields}
        answer = await call(self.http, self.broker, "POST", "/queue", json=body)
        assert (answer.status, answer.content_type) == (200, JSON_CT), answer
        found = answer.json()
        return Outcome(answer, None if found == {"error": "empty queue"} else found)

    def assert_refused(self, outcome: Outcome, rest_status: int) -> str:
        return assert_error(outcome.answer, 200)


def _form(fields: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in fields.items()}


@pytest.fixture(params=[Rest, Json], ids=["rest", "json"])
def wire(request: pytest.FixtureRequest, http: aiohttp.ClientSession, broker: Broker) -> Wire:
    kind: type[Wire] = request.param
    return kind(http, broker, "jobs")


# ---------------------------------------------------------------- small helpers


async def add(http: aiohttp.ClientSession, broker: Broker, queue: str, *values: str) -> list[str]:
    keys = []
    for value in values:
        answer = await call(http, broker, "POST", f"/q/{queue}", data={"value": value})
        assert answer.status == 200, answer
        keys.append(answer.body.decode().strip())
    return keys


async def stats(http: aiohttp.ClientSession, broker: Broker, queue: str) -> dict[str, Any]:
    answer = await call(http, broker, "GET", f"/stats/{queue}")
    assert answer.status == 200, answer
    found: dict[str, Any] = answer.json()
    return found


async def counts(http: aiohttp.ClientSession, broker: Broker, queue: str) -> tuple[int, ...]:
    """(waiting, leased, delayed, dead) as ``/stats/<queue>`` reports them."""
    found = await stats(http, broker, queue)
    return found["len"], found["leased"], found["delayed"], found["dead"]


async def take_all(http: aiohttp.ClientSession, broker: Broker, queue: str) -> list[str]:
    """Take every waiting message; their values, oldest first."""
    values = []
    while (answer := await call(http, broker, "GET", f"/q/{queue}")).status == 200:
        values.append(answer.json()["value"])
    assert answer.status == 204, answer
    return values


async def until_counts(
    http: aiohttp.ClientSession, broker: Broker, queue: str, expected: tuple[int, ...]
) -> None:
    async def reached() -> bool:
        return await counts(http, broker, queue) == expected

    await async_wait_until(reached, 10, f"{queue} counts {expected}")


# ---------------------------------------------------------------- reserve and ack


async def test_reserve_leases_the_oldest_message_and_ack_deletes_it(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "first", "second")

    lease = await wire.reserve_one()

    assert set(lease) == {"queue", "key", "value", "receipt", "deliveries"}
    assert (lease["queue"], lease["key"], lease["value"], lease["deliveries"]) == (
        "jobs",
        "jobs:1",
        "first",
        1,
    )
    assert isinstance(lease["receipt"], str) and len(lease["receipt"]) >= 16
    assert await counts(http, broker, "jobs") == (1, 1, 0, 0)
    assert await wire.ok("ack", lease) == {"queue": "jobs", "key": "jobs:1", "acked": True}
    assert await counts(http, broker, "jobs") == (1, 0, 0, 0)
    assert await take_all(http, broker, "jobs") == ["second"]


async def test_reserve_answers_the_rest_shape_byte_for_byte(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "shape", "v")

    answer = await call(http, broker, "POST", "/q/shape/reserve")

    receipt = answer.json()["receipt"]
    assert_json(
        answer,
        {"queue": "shape", "key": "shape:1", "value": "v", "receipt": receipt, "deliveries": 1},
    )


async def test_reserve_on_an_empty_queue_answers_nothing(wire: Wire) -> None:
    assert await wire.reserve() is None
    assert await wire.reserve(timeout=5) is None


async def test_the_json_protocol_takes_a_reserve_from_the_form_field_body(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "form", "v")

    answer = await call(
        http, broker, "POST", "/queue", data={"body": '{"cmd": "reserve", "queue": "form"}'}
    )

    assert answer.status == 200
    assert (answer.json()["key"], answer.json()["deliveries"]) == ("form:1", 1)


async def test_a_reserved_message_is_invisible_to_take_and_to_other_reserves(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "only")
    await wire.reserve_one()

    assert await wire.reserve() is None
    assert (await call(http, broker, "GET", "/q/jobs")).status == 204


async def test_del_with_a_receipt_acknowledges_and_without_one_deletes_a_leased_message(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a", "b")
    json = Json(http, broker, "jobs")
    first, second = await json.reserve_one(), await json.reserve_one()

    acked = await json.send("del", key=first["key"], receipt=first["receipt"])
    deleted = await json.send("del", key=second["key"])

    assert acked.body == {"queue": "jobs", "key": "jobs:1", "acked": True}
    assert deleted.body == {"queue": "jobs", "deleted": True, "key": "jobs:2"}
    assert await counts(http, broker, "jobs") == (0, 0, 0, 0)


# ---------------------------------------------------------------- refused receipts and keys


async def test_a_wrong_receipt_is_refused_and_changes_nothing(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    lease = await wire.reserve_one()
    forged = {**lease, "receipt": "not-the-receipt"}

    for command, extra in [("ack", {}), ("nack", {}), ("extend", {"timeout": 60})]:
        outcome = await wire.send(command, key=forged["key"], receipt=forged["receipt"], **extra)
        message = wire.assert_refused(outcome, 409)
        assert "receipt" in message and "jobs:1" in message, message

    assert await counts(http, broker, "jobs") == (0, 1, 0, 0)
    assert await wire.ok("ack", lease) == {"queue": "jobs", "key": "jobs:1", "acked": True}


async def test_a_stale_receipt_is_refused_after_the_message_was_reserved_again(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    stale = await wire.reserve_one(timeout=SHORT_LEASE)
    await until_counts(http, broker, "jobs", (1, 0, 0, 0))  # the lease expired: back in queue
    fresh = await wire.reserve_one(timeout=60)

    for command in ("ack", "nack", "extend"):
        outcome = await wire.send(command, key=stale["key"], receipt=stale["receipt"])
        assert "receipt" in wire.assert_refused(outcome, 409)

    assert fresh["key"] == stale["key"] and fresh["receipt"] != stale["receipt"]
    assert fresh["deliveries"] == 2
    assert await counts(http, broker, "jobs") == (0, 1, 0, 0)
    assert (await wire.ok("ack", fresh))["acked"] is True


async def test_a_receipt_is_refused_once_its_lease_expired_even_before_a_new_reserve(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    stale = await wire.reserve_one(timeout=SHORT_LEASE)
    await until_counts(http, broker, "jobs", (1, 0, 0, 0))

    outcome = await wire.send("ack", key=stale["key"], receipt=stale["receipt"])

    wire.assert_refused(outcome, 409)
    assert await take_all(http, broker, "jobs") == ["v"]


async def test_ack_of_an_unknown_or_already_acknowledged_key_is_refused(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    lease = await wire.reserve_one()
    await wire.ok("ack", lease)

    again = await wire.send("ack", key=lease["key"], receipt=lease["receipt"])
    unknown = await wire.send("ack", key="jobs:99", receipt=lease["receipt"])

    assert "jobs:1" in wire.assert_refused(again, 404)
    assert "jobs:99" in wire.assert_refused(unknown, 404)
    assert await counts(http, broker, "jobs") == (0, 0, 0, 0)


@pytest.mark.parametrize("key", ["other:1", "jobs", "jobs:x", "jobs:-1", ""])
async def test_ack_of_a_key_that_is_not_one_of_the_queues_is_bad_input(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker, key: str
) -> None:
    await add(http, broker, "jobs", "v")
    lease = await wire.reserve_one()

    outcome = await wire.send("ack", key=key, receipt=lease["receipt"])

    wire.assert_refused(outcome, 400)
    assert await counts(http, broker, "jobs") == (0, 1, 0, 0)


async def test_ack_without_a_receipt_is_bad_input(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    lease = await wire.reserve_one()

    outcome = await wire.send("ack", key=lease["key"])

    wire.assert_refused(outcome, 400)
    assert await counts(http, broker, "jobs") == (0, 1, 0, 0)


# ---------------------------------------------------------------- nack and extend


async def test_nack_returns_the_message_to_the_front_with_one_more_delivery(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a", "b")
    lease = await wire.reserve_one()

    answer = await wire.ok("nack", lease)
    again = await wire.reserve_one()

    assert answer == {"queue": "jobs", "key": "jobs:1", "outcome": "requeued"}
    assert (again["key"], again["value"], again["deliveries"]) == ("jobs:1", "a", 2)
    assert again["receipt"] != lease["receipt"]
    assert (await wire.reserve_one())["key"] == "jobs:2"


async def test_nack_with_a_delay_hides_the_message_until_then(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    lease = await wire.reserve_one()
    delay = 1.0  # long enough that a loaded machine checks the state before it is due

    sent_at = time.monotonic()
    answer = await wire.ok("nack", lease, delay=delay)

    assert answer == {"queue": "jobs", "key": "jobs:1", "outcome": "delayed"}
    assert await counts(http, broker, "jobs") == (0, 0, 1, 0)
    assert await wire.reserve() is None
    again = await wire.reserve_one(wait=5)
    elapsed = time.monotonic() - sent_at
    assert delay - 0.02 <= elapsed < delay + 1.0, elapsed
    assert (again["key"], again["deliveries"]) == ("jobs:1", 2)


async def test_extend_keeps_the_message_leased_past_its_original_timeout(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    lease = await wire.reserve_one(timeout=SHORT_LEASE)

    answer = await wire.ok("extend", lease, timeout=30)
    # An observation window, to prove the lease does NOT expire at its original deadline.
    deadline = time.monotonic() + SHORT_LEASE + 0.5
    while time.monotonic() < deadline:
        assert await counts(http, broker, "jobs") == (0, 1, 0, 0)
        assert await wire.reserve() is None

    assert answer == {"queue": "jobs", "key": "jobs:1", "timeout": 30}
    assert (await wire.ok("ack", lease))["acked"] is True


async def test_extend_can_shorten_a_lease(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    lease = await wire.reserve_one(timeout=60)

    await wire.ok("extend", lease, timeout=SHORT_LEASE)

    await until_counts(http, broker, "jobs", (1, 0, 0, 0))
    assert (await wire.reserve_one())["deliveries"] == 2


# ---------------------------------------------------------------- expired leases


async def test_expired_leases_return_to_the_front_in_their_order_with_deliveries_grown(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "m1", "m2", "m3", "m4", "m5")
    batch = await wire.reserve(count=3, timeout=SHORT_LEASE)
    assert batch is not None
    assert [m["value"] for m in batch["messages"]] == ["m1", "m2", "m3"]
    assert await counts(http, broker, "jobs") == (2, 3, 0, 0)

    await until_counts(http, broker, "jobs", (5, 0, 0, 0))
    again = await wire.reserve(count=5)

    assert again is not None
    assert [(m["value"], m["deliveries"]) for m in again["messages"]] == [
        ("m1", 2),
        ("m2", 2),
        ("m3", 2),
        ("m4", 1),
        ("m5", 1),
    ]


async def test_many_leases_expiring_together_keep_their_order(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    values = [f"v{i}" for i in range(250)]
    await call(http, broker, "POST", "/q/many", json={"values": values})
    reserved = await call(
        http, broker, "POST", "/q/many/reserve", data={"count": "250", "timeout": SHORT_LEASE}
    )
    assert len(reserved.json()["messages"]) == 250

    await until_counts(http, broker, "many", (250, 0, 0, 0))
    taken = await call(http, broker, "GET", "/q/many?count=250")

    assert [m["value"] for m in taken.json()["messages"]] == values


async def test_a_lease_that_expired_before_a_nack_from_another_holder_is_not_lost(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    rest = Rest(http, broker, "jobs")
    old = await rest.reserve_one(timeout=SHORT_LEASE)
    await until_counts(http, broker, "jobs", (1, 0, 0, 0))
    new = await rest.reserve_one(timeout=60)

    assert (await rest.send("nack", key=old["key"], receipt=old["receipt"])).answer.status == 409
    assert (await rest.ok("nack", new))["outcome"] == "requeued"
    assert (await rest.reserve_one())["deliveries"] == 3


# ---------------------------------------------------------------- delays


async def test_a_delayed_add_is_invisible_until_its_time(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    sent_at = time.monotonic()
    key = await call(http, broker, "POST", "/q/later", data={"value": "v", "delay": "1"})
    json_add = await call(
        http,
        broker,
        "POST",
        "/queue",
        json={"cmd": "add", "queue": "later", "value": "w", "delay": 1},
    )

    assert key.body == b"later:1\r\n"
    assert json_add.json() == {"queue": "later", "value": "w", "key": "later:2"}
    assert await counts(http, broker, "later") == (0, 0, 2, 0)
    assert (await call(http, broker, "GET", "/q/later")).status == 204
    first = await call(http, broker, "GET", "/q/later?wait=5")
    assert time.monotonic() - sent_at >= 1 - 0.02
    assert first.json()["key"] == "later:1"
    assert await take_all(http, broker, "later") == ["w"]


async def test_a_delayed_batch_becomes_visible_in_the_order_it_was_added(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    values = [f"v{i}" for i in range(150)]

    answer = await call(http, broker, "POST", "/q/dbatch", json={"values": values, "delay": 0.3})
    assert answer.status == 200, answer
    await until_counts(http, broker, "dbatch", (150, 0, 0, 0))

    taken = await call(http, broker, "GET", "/q/dbatch?count=150")
    assert [m["value"] for m in taken.json()["messages"]] == values


# ---------------------------------------------------------------- batches


async def test_a_batch_add_over_rest_answers_every_key_in_order(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answer = await call(http, broker, "POST", "/q/batch", json={"values": ["a", "", "007"]})

    assert_json(answer, {"queue": "batch", "keys": ["batch:1", "batch:2", "batch:3"]})
    assert await take_all(http, broker, "batch") == ["a", "", "007"]


async def test_a_batch_add_over_the_json_protocol_answers_every_key_in_order(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    command = {"cmd": "add", "queue": "batch", "values": ["x", "y"]}

    answer = await call(http, broker, "POST", "/queue", json=command)

    assert_json(answer, {"queue": "batch", "keys": ["batch:1", "batch:2"]})
    assert await take_all(http, broker, "batch") == ["x", "y"]


async def test_take_with_count_answers_up_to_n_messages_oldest_first(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "tk", "a", "b", "c")

    two = await call(http, broker, "GET", "/q/tk?count=2")
    rest = await call(http, broker, "GET", "/q/tk?count=5")
    empty = await call(http, broker, "GET", "/q/tk?count=5")

    assert_json(
        two,
        {
            "queue": "tk",
            "messages": [
                {"key": "tk:1", "value": "a", "count": 0},
                {"key": "tk:2", "value": "b", "count": 0},
            ],
        },
    )
    assert_json(rest, {"queue": "tk", "messages": [{"key": "tk:3", "value": "c", "count": 0}]})
    assert empty.status == 204 and empty.body == b""


async def test_json_take_with_count_answers_a_list_even_when_empty(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "tk", "a", "b")
    command = {"cmd": "take", "queue": "tk", "count": 5}

    found = await call(http, broker, "POST", "/queue", json=command)
    empty = await call(http, broker, "POST", "/queue", json=command)

    assert [m["value"] for m in found.json()["messages"]] == ["a", "b"]
    assert_json(empty, {"queue": "tk", "messages": []})


async def test_reserve_with_count_leases_up_to_n_and_each_is_acknowledged_alone(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a", "b", "c")

    batch = await wire.reserve(count=5, timeout=60)

    assert batch is not None and batch["queue"] == "jobs"
    messages = batch["messages"]
    assert [(m["key"], m["value"], m["deliveries"]) for m in messages] == [
        ("jobs:1", "a", 1),
        ("jobs:2", "b", 1),
        ("jobs:3", "c", 1),
    ]
    assert len({m["receipt"] for m in messages}) == 3
    assert await counts(http, broker, "jobs") == (0, 3, 0, 0)
    await wire.ok("ack", messages[1])
    assert await counts(http, broker, "jobs") == (0, 2, 0, 0)


async def test_reserve_with_count_on_an_empty_queue(wire: Wire) -> None:
    outcome = await wire.send("reserve", count=3)

    if wire.name == "rest":
        assert outcome.answer.status == 204
    else:
        assert outcome.body == {"queue": "jobs", "messages": []}


# ---------------------------------------------------------------- bad input changes nothing


REST_BAD = [
    ("POST", "/q/jobs/reserve", {"count": "0"}),
    ("POST", "/q/jobs/reserve", {"count": "abc"}),
    ("POST", "/q/jobs/reserve", {"count": "1001"}),
    ("POST", "/q/jobs/reserve", {"count": "-1"}),
    ("POST", "/q/jobs/reserve", {"timeout": "0"}),
    ("POST", "/q/jobs/reserve", {"timeout": "-1"}),
    ("POST", "/q/jobs/reserve", {"timeout": "soon"}),
    ("POST", "/q/jobs/reserve", {"wait": "-1"}),
    ("POST", "/q/jobs/reserve", {"wait": "301"}),
    ("POST", "/q/jobs/reserve", {"count": "2", "timeout": "nan"}),
    ("GET", "/q/jobs?count=0", None),
    ("GET", "/q/jobs?count=abc", None),
    ("GET", "/q/jobs?wait=-1", None),
    ("GET", "/q/jobs?wait=abc", None),
    ("POST", "/q/jobs", {"value": "v", "delay": "-1"}),
    ("POST", "/q/jobs", {"value": "v", "delay": "abc"}),
    ("POST", "/q/jobs", {"value": "v", "delay": "inf"}),
    ("POST", "/", {"queue": "jobs", "value": "v", "delay": "-5"}),
]


@pytest.mark.parametrize(("method", "path", "form"), REST_BAD)
async def test_bad_rest_input_answers_400_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker, method: str, path: str, form: Any
) -> None:
    await add(http, broker, "jobs", "a", "b")
    await Rest(http, broker, "jobs").reserve_one(timeout=60)

    answer = await call(http, broker, method, path, data=form)

    assert_error(answer, 400)
    assert await counts(http, broker, "jobs") == (1, 1, 0, 0)


@pytest.mark.parametrize(
    "values", ["a", [1], [], ["a", None], ["a", ["b"]], {"a": 1}, None, [True]]
)
async def test_a_batch_that_is_not_a_list_of_strings_answers_400_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker, values: Any
) -> None:
    answer = await call(http, broker, "POST", "/q/jobs", json={"values": values})

    assert_error(answer, 400)
    assert await counts(http, broker, "jobs") == (0, 0, 0, 0)


@pytest.mark.parametrize("values", ["a", [1], [], ["a", None], {"a": 1}, None, [True]])
async def test_a_json_batch_that_is_not_a_list_of_strings_answers_an_error_and_adds_nothing(
    http: aiohttp.ClientSession, broker: Broker, values: Any
) -> None:
    command = {"cmd": "add", "queue": "jobs", "values": values}

    answer = await call(http, broker, "POST", "/queue", json=command)

    assert "values" in assert_error(answer, 200)
    assert await counts(http, broker, "jobs") == (0, 0, 0, 0)


JSON_BAD = [
    ("reserve", {"count": 0}),
    ("reserve", {"count": "abc"}),
    ("reserve", {"count": 1001}),
    ("reserve", {"count": 1.5}),
    ("reserve", {"count": True}),
    ("reserve", {"timeout": 0}),
    ("reserve", {"timeout": -3}),
    ("reserve", {"timeout": "x"}),
    ("reserve", {"timeout": [1]}),
    ("reserve", {"wait": -1}),
    ("take", {"count": 0}),
    ("take", {"count": "abc"}),
    ("take", {"wait": "forever"}),
    ("add", {"value": "v", "delay": -1}),
    ("add", {"value": "v", "delay": "abc"}),
    ("add", {"value": "v", "ttl": -1}),
    ("add", {"value": 5}),
    ("nack", {"key": "jobs:1", "receipt": "r", "delay": -1}),
    ("extend", {"key": "jobs:1", "receipt": "r", "timeout": 0}),
    ("ack", {"key": 1, "receipt": "r"}),
    ("ack", {"key": "jobs:1"}),
    ("ack", {"key": "jobs:1", "receipt": ""}),
]


@pytest.mark.parametrize(("cmd", "fields"), JSON_BAD)
async def test_bad_json_command_input_answers_an_error_and_changes_nothing(
    http: aiohttp.ClientSession, broker: Broker, cmd: str, fields: dict[str, Any]
) -> None:
    await add(http, broker, "jobs", "a", "b")
    await Rest(http, broker, "jobs").reserve_one(timeout=60)

    command = {"cmd": cmd, "queue": "jobs", **fields}
    answer = await call(http, broker, "POST", "/queue", json=command)

    assert_error(answer, 200)
    assert await counts(http, broker, "jobs") == (1, 1, 0, 0)


async def test_bad_nack_delay_and_extend_timeout_over_rest_change_nothing(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    rest = Rest(http, broker, "jobs")
    lease = await rest.reserve_one(timeout=60)
    held = {"key": lease["key"], "receipt": lease["receipt"]}

    for command, extra in [
        ("nack", {"delay": "-1"}),
        ("nack", {"delay": "x"}),
        ("extend", {"timeout": "0"}),
        ("extend", {"timeout": "-2"}),
        ("extend", {"timeout": str(13 * 3600)}),
    ]:
        rest.assert_refused(await rest.send(command, **held, **extra), 400)

    assert await counts(http, broker, "jobs") == (0, 1, 0, 0)
    assert (await rest.ok("ack", lease))["acked"] is True


# ---------------------------------------------------------------- max_deliveries and stats


async def test_max_deliveries_is_set_like_the_policy_and_cleared_with_zero(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    set_it = await call(http, broker, "POST", "/p/md", data={"max_deliveries": "3"})
    shown = await call(http, broker, "GET", "/p/md")
    cleared = await call(http, broker, "POST", "/p/md", data={"max_deliveries": "0"})
    bad = await call(http, broker, "POST", "/p/md", data={"max_deliveries": "-1"})

    assert_json(set_it, {"queue": "md", "max_deliveries": 3, "value": "broadcast"})
    assert_json(shown, {"queue": "md", "value": "broadcast", "max_deliveries": 3})
    assert_json(cleared, {"queue": "md", "max_deliveries": 0, "value": "broadcast"})
    assert_error(bad, 400)
    assert_json(await call(http, broker, "GET", "/p/md"), {"queue": "md", "value": "broadcast"})


async def test_stats_show_waiting_leased_delayed_and_dead_counts(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/p/st", data={"max_deliveries": "1"})
    await add(http, broker, "st", "to-kill", "to-hold", "to-wait")
    await call(http, broker, "POST", "/q/st", data={"value": "later", "delay": "60"})
    rest = Rest(http, broker, "st")
    doomed = await rest.reserve_one(timeout=60)
    await rest.reserve_one(timeout=60)

    assert (await rest.ok("nack", doomed))["outcome"] == "dead"

    entry = stats_entry("st", 1, leased=1, delayed=1, dead=1)
    one = await call(http, broker, "GET", "/stats/st")
    everything = (await call(http, broker, "GET", "/stats")).json()
    assert one.json() == {"redis": one.json()["redis"], "queue": "st", **entry}
    assert everything["queues"]["st"] == entry
    assert everything["queues"]["st:dead"] == stats_entry("st:dead", 1)  # it has no dead queue
    assert await take_all(http, broker, "st:dead") == ["to-kill"]
    assert await counts(http, broker, "st") == (1, 1, 1, 0)


# ---------------------------------------------------------------- not leased vs stale receipt


async def test_settling_a_message_that_was_never_leased_says_it_is_not_leased(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "waiting")
    await call(http, broker, "POST", "/q/jobs", data={"value": "later", "delay": "60"})

    for key in ("jobs:1", "jobs:2"):
        for command, extra in [("ack", {}), ("nack", {}), ("extend", {"timeout": 60})]:
            outcome = await wire.send(command, key=key, receipt="no-lease", **extra)
            assert wire.assert_refused(outcome, 409) == f"message {key} is not leased"

    assert await counts(http, broker, "jobs") == (1, 0, 1, 0)


async def test_a_receipt_whose_lease_ended_is_a_wrong_or_expired_receipt(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "v")
    nacked = await wire.reserve_one()
    await wire.ok("nack", nacked)  # waiting again, once delivered

    for command in ("ack", "nack", "extend"):
        outcome = await wire.send(command, key=nacked["key"], receipt=nacked["receipt"])
        message = wire.assert_refused(outcome, 409)
        assert message.startswith("wrong or expired receipt for jobs:1"), message

    assert await counts(http, broker, "jobs") == (1, 0, 0, 0)


# ---------------------------------------------------------------- batch ack and nack


async def settle(wire: Wire, command: str, messages: Any, **extra: Any) -> Answer:
    """A batch ack or nack as JSON: REST ``POST /q/jobs/<command>`` or a JSON command."""
    if wire.name == "rest":
        body = {"messages": messages, **extra}
        return await call(wire.http, wire.broker, "POST", f"/q/{wire.queue}/{command}", json=body)
    body = {"cmd": command, "queue": wire.queue, "messages": messages, **extra}
    return await call(wire.http, wire.broker, "POST", "/queue", json=body)


def held(lease: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": lease["key"], "receipt": lease["receipt"], **extra}


async def outcomes_of_every_kind(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Leases of jobs:1 (held), jobs:2 (held), jobs:3 (reserved again: a stale receipt),
    jobs:4 (already acknowledged: gone), jobs:5 (delayed, never leased), and a key of
    another queue; returns (the entries, the failures expected for the last four)."""
    await add(http, broker, "jobs", "a", "b", "c", "d")
    await call(http, broker, "POST", "/q/jobs", data={"value": "e", "delay": "60"})
    first, second = await wire.reserve_one(), await wire.reserve_one()
    stale = await wire.reserve_one(timeout=SHORT_LEASE)
    await until_counts(http, broker, "jobs", (2, 2, 1, 0))
    gone = await wire.reserve_one()
    assert gone["key"] == "jobs:3"  # the stale one, back at the front
    gone = await wire.reserve_one()
    await wire.ok("ack", gone)
    entries = [held(first), held(stale), held(gone), {"key": "jobs:5", "receipt": "r"},
               {"key": "other:1", "receipt": "r"}, held(second)]
    failed = [
        {"key": "jobs:3", "error": "wrong or expired receipt for jobs:3: the lease is not yours"},
        {"key": "jobs:4", "error": "no such message: jobs:4"},
        {"key": "jobs:5", "error": "message jobs:5 is not leased"},
        {"key": "other:1", "error": "invalid message key 'other:1' for queue 'jobs'"},
    ]
    return entries, failed


async def test_a_batch_ack_answers_each_entry_in_one_request(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    entries, failed = await outcomes_of_every_kind(wire, http, broker)

    answer = await settle(wire, "ack", entries)

    expected = {"queue": "jobs", "acked": ["jobs:1", "jobs:2"], "failed": failed}
    assert_json(answer, expected)
    assert await counts(http, broker, "jobs") == (0, 1, 1, 0)  # jobs:3 leased, jobs:5 delayed


async def test_a_batch_nack_answers_each_entry_in_one_request(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    entries, failed = await outcomes_of_every_kind(wire, http, broker)
    entries[-1]["delay"] = 60  # jobs:2 comes back later; jobs:1 at once

    answer = await settle(wire, "nack", entries)

    nacked = [{"key": "jobs:1", "outcome": "requeued"}, {"key": "jobs:2", "outcome": "delayed"}]
    assert_json(answer, {"queue": "jobs", "nacked": nacked, "failed": failed})
    assert await counts(http, broker, "jobs") == (1, 1, 2, 0)
    assert (await wire.reserve_one())["key"] == "jobs:1"


async def test_a_batch_nack_dead_letters_what_reached_max_deliveries(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/p/jobs", data={"max_deliveries": "1"})
    await add(http, broker, "jobs", "a", "b")
    leases = (await wire.reserve(count=2))
    assert leases is not None

    answer = await settle(wire, "nack", [held(m) for m in leases["messages"]])

    dead = [{"key": "jobs:1", "outcome": "dead"}, {"key": "jobs:2", "outcome": "dead"}]
    assert_json(answer, {"queue": "jobs", "nacked": dead, "failed": []})
    assert await take_all(http, broker, "jobs:dead") == ["a", "b"]


async def test_a_batch_nack_puts_the_messages_back_oldest_frontmost_whatever_their_order(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "m1", "m2", "m3", "m4")
    leases = await wire.reserve(count=3)
    assert leases is not None
    entries = [held(m) for m in reversed(leases["messages"])]

    answer = await settle(wire, "nack", entries)

    assert [n["outcome"] for n in answer.json()["nacked"]] == ["requeued"] * 3
    assert await take_all(http, broker, "jobs") == ["m1", "m2", "m3", "m4"]


async def test_a_batch_nack_takes_a_default_delay_that_an_entry_overrides(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a", "b")
    leases = await wire.reserve(count=2)
    assert leases is not None
    first, second = leases["messages"]

    answer = await settle(wire, "nack", [held(first), held(second, delay=0)], delay=60)

    outcomes = [n["outcome"] for n in answer.json()["nacked"]]
    assert outcomes == ["delayed", "requeued"]
    assert await take_all(http, broker, "jobs") == ["b"]


async def test_the_same_lease_twice_in_a_batch_is_settled_once(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await add(http, broker, "jobs", "a")
    lease = await wire.reserve_one()

    answer = (await settle(wire, "nack", [held(lease), held(lease)])).json()

    assert answer["nacked"] == [{"key": "jobs:1", "outcome": "requeued"}]
    assert [f["key"] for f in answer["failed"]] == ["jobs:1"]
    assert await take_all(http, broker, "jobs") == ["a"]


async def test_a_batch_of_a_thousand_leases_is_acknowledged_in_one_request(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/jobs", json={"values": [str(i) for i in range(1000)]})
    leases = await wire.reserve(count=1000)
    assert leases is not None

    answer = await settle(wire, "ack", [held(m) for m in leases["messages"]])

    assert len(answer.json()["acked"]) == 1000 and answer.json()["failed"] == []
    assert await counts(http, broker, "jobs") == (0, 0, 0, 0)


BAD_BATCHES: list[Any] = [
    "jobs:1",
    [],
    None,
    {"key": "jobs:1", "receipt": "r"},
    ["jobs:1"],
    [{"key": "jobs:1"}],
    [{"receipt": "r"}],
    [{"key": 1, "receipt": "r"}],
    [{"key": "jobs:1", "receipt": ""}],
    [{"key": "jobs:1", "receipt": ["r"]}],
    [{"key": "jobs:1", "receipt": "r"}] * 1000,  # 1001 with the lease held
]
BAD_NACKS = [
    [{"key": "jobs:1", "receipt": "r", "delay": -1}],
    [{"key": "jobs:1", "receipt": "r", "delay": "soon"}],
]
BAD_SETTLEMENTS = [
    *(("ack", messages) for messages in BAD_BATCHES),
    *(("nack", messages) for messages in BAD_BATCHES + BAD_NACKS),
]


@pytest.mark.parametrize(("command", "messages"), BAD_SETTLEMENTS)
async def test_a_malformed_batch_is_refused_whole_and_changes_nothing(
    wire: Wire, http: aiohttp.ClientSession, broker: Broker, command: str, messages: Any
) -> None:
    await add(http, broker, "jobs", "a", "b")
    lease = await wire.reserve_one()
    batch = [held(lease), *messages] if isinstance(messages, list) and messages else messages

    answer = await settle(wire, command, batch)

    message = assert_error(answer, 400 if wire.name == "rest" else 200)
    assert "messages" in message, message
    assert await counts(http, broker, "jobs") == (1, 1, 0, 0)
