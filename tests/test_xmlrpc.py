"""XML-RPC at ``/xmlrpc`` (SPEC §3.6, §4) with Python's own ``xmlrpc.client.ServerProxy``.

Every method (``get``, ``set``, ``add``, ``take``, ``len``, ``queues``, ``reserve``, ``ack``)
against a real broker on both backends, the faults it answers (empty queue, bad input, gone
message, wrong receipt, unknown method), and a body that is not XML-RPC at all.
"""

from __future__ import annotations

import json
import time
import urllib.request
import xmlrpc.client
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import redis
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import wait_until
from tests.http_support import (
    BACKENDS,
    Served,
    assert_error,
    call,
    no_5xx_session,
    serve_module,
)

FAULT_EMPTY, FAULT_BAD_INPUT, FAULT_GONE, FAULT_STALE, FAULT_NO_METHOD = 1, 2, 3, 4, -32601


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
async def clean(raw_redis: Redis, backend: Backend) -> AsyncIterator[None]:
    """The keyspace holds no orphan after the test."""
    yield
    await assert_no_orphans(raw_redis, backend.prefix)


@pytest.fixture
def rpc(broker: Broker, clean: None) -> Iterator[xmlrpc.client.ServerProxy]:
    with xmlrpc.client.ServerProxy(broker.url + "/xmlrpc", allow_none=True) as proxy:
        yield proxy


def fault_of(call_it: Any, *args: Any) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        call_it(*args)
    fault = caught.value
    assert isinstance(fault.faultString, str) and fault.faultString
    return fault


# ---------------------------------------------------------------- the original's two methods


def test_set_answers_the_key_and_get_takes_the_message(rpc: xmlrpc.client.ServerProxy) -> None:
    assert rpc.set("test", "foobar") == "test:1"
    assert rpc.set("test", "007") == "test:2"

    assert rpc.get("test") == {"key": "test:1", "value": "foobar", "count": 0}
    assert rpc.get("test") == {"key": "test:2", "value": "007", "count": 0}
    assert rpc.len("test") == 0


def test_get_on_an_empty_queue_is_the_empty_queue_fault(rpc: xmlrpc.client.ServerProxy) -> None:
    fault = fault_of(rpc.get, "nothing-here")

    assert (fault.faultCode, fault.faultString) == (FAULT_EMPTY, "empty queue")


# ---------------------------------------------------------------- the other methods


def test_add_take_len_and_queues(rpc: xmlrpc.client.ServerProxy) -> None:
    assert rpc.add("a", "ünïcödé ✓") == "a:1"
    assert rpc.add("a", "") == "a:2"
    assert rpc.add("b", "with ttl", 60) == "b:1"

    assert rpc.len("a") == 2
    assert rpc.len("never") == 0
    assert rpc.queues() == ["a", "b"]
    assert rpc.take("a") == {"key": "a:1", "value": "ünïcödé ✓", "count": 0}
    assert rpc.take("a") == {"key": "a:2", "value": "", "count": 0}
    assert fault_of(rpc.take, "a").faultCode == FAULT_EMPTY
    assert rpc.take("b")["value"] == "with ttl"


def test_xmlrpc_and_http_see_the_same_queues(
    rpc: xmlrpc.client.ServerProxy, broker: Broker
) -> None:
    import urllib.request

    rpc.set("shared", "from xml-rpc")
    with urllib.request.urlopen(broker.url + "/q/shared") as response:
        assert response.read() == b'{"key": "shared:1", "value": "from xml-rpc", "count": 0}\r\n'


def test_reserve_leases_and_ack_deletes(rpc: xmlrpc.client.ServerProxy) -> None:
    rpc.add("jobs", "work")

    lease = rpc.reserve("jobs", 60)

    assert set(lease) == {"queue", "key", "value", "receipt", "deliveries"}
    assert (lease["queue"], lease["key"], lease["value"], lease["deliveries"]) == (
        "jobs",
        "jobs:1",
        "work",
        1,
    )
    assert rpc.len("jobs") == 0
    assert fault_of(rpc.reserve, "jobs").faultCode == FAULT_EMPTY
    assert rpc.ack("jobs", lease["key"], lease["receipt"]) is True
    assert fault_of(rpc.ack, "jobs", lease["key"], lease["receipt"]).faultCode == FAULT_GONE


def test_reserve_uses_the_default_visibility_timeout_when_none_or_nil_is_given(
    rpc: xmlrpc.client.ServerProxy, backend: Backend
) -> None:
    rpc.add("jobs", "work")
    rpc.add("jobs", "more")

    before = time.time()
    leases = [rpc.reserve("jobs"), rpc.reserve("jobs", None)]

    assert [lease["deliveries"] for lease in leases] == [1, 1]
    client = redis.Redis.from_url(backend.url)
    leased = client.zrange(Keys(backend.prefix).queue_key("jobs", "leased"), 0, -1, withscores=True)
    client.close()
    assert len(leased) == 2
    for _, deadline_ms in leased:
        assert before + 29 < deadline_ms / 1000 < time.time() + 31  # the 30 s default
    for lease in leases:
        assert rpc.ack("jobs", lease["key"], lease["receipt"]) is True


def test_an_expired_lease_comes_back_and_its_old_receipt_is_the_stale_fault(
    rpc: xmlrpc.client.ServerProxy,
) -> None:
    rpc.add("jobs", "work")
    old = rpc.reserve("jobs", 0.3)
    wait_until(lambda: rpc.len("jobs") == 1, 10, "the lease expired")

    new = rpc.reserve("jobs", 60)
    fault = fault_of(rpc.ack, "jobs", old["key"], old["receipt"])

    assert (new["key"], new["deliveries"]) == (old["key"], 2)
    assert fault.faultCode == FAULT_STALE and "receipt" in fault.faultString
    assert rpc.ack("jobs", new["key"], new["receipt"]) is True


def test_a_wrong_receipt_is_the_stale_fault_and_changes_nothing(
    rpc: xmlrpc.client.ServerProxy,
) -> None:
    rpc.add("jobs", "work")
    lease = rpc.reserve("jobs", 60)

    fault = fault_of(rpc.ack, "jobs", lease["key"], "forged")

    assert fault.faultCode == FAULT_STALE and lease["key"] in fault.faultString
    assert rpc.ack("jobs", lease["key"], lease["receipt"]) is True


def test_ack_of_an_unknown_key_is_the_gone_fault(rpc: xmlrpc.client.ServerProxy) -> None:
    fault = fault_of(rpc.ack, "jobs", "jobs:42", "r")

    assert fault.faultCode == FAULT_GONE and "jobs:42" in fault.faultString


# ---------------------------------------------------------------- bad input


BAD_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("set", (5, "v")),
    ("set", ("q", 5)),
    ("set", ("", "v")),
    ("set", ("a/b", "v")),
    ("set", ("q",)),
    ("set", ("q", "v", 1, 2)),
    ("add", ("q", "v", -1)),
    ("add", ("q", "v", "soon")),
    ("add", ("q", None)),
    ("add", ("q", xmlrpc.client.Binary(b"bytes"))),
    ("get", ({"queue": "q"},)),
    ("get", ()),
    ("take", (["q"],)),
    ("len", (None,)),
    ("queues", ("extra",)),
    ("reserve", ("q", 0)),
    ("reserve", ("q", -5)),
    ("reserve", ("q", "later")),
    ("reserve", ("q", True)),
    ("reserve", ("q", 13 * 3600)),
    ("ack", ("q", "q:1")),
    ("ack", ("q", "other:1", "r")),
    ("ack", ("q", "q:1", 7)),
    ("add", ("q", "v", "1_0")),
    ("add", ("q", "v", "\u0661")),
    ("add", ("q", "v", " 5")),
    ("add", ("q", "v", "0x10")),
    ("add", ("q", "v", "1e400")),
    ("add", ("q", "v", "nan")),
    ("reserve", ("q", "1_0")),
]


@pytest.mark.parametrize(("method", "args"), BAD_CALLS)
def test_bad_input_is_the_bad_input_fault_and_changes_nothing(
    rpc: xmlrpc.client.ServerProxy, method: str, args: tuple[Any, ...]
) -> None:
    rpc.set("q", "kept")

    fault = fault_of(getattr(rpc, method), *args)

    assert fault.faultCode == FAULT_BAD_INPUT, fault
    assert rpc.queues() == ["q"]
    assert rpc.len("q") == 1


def test_an_unknown_method_is_the_no_such_method_fault(rpc: xmlrpc.client.ServerProxy) -> None:
    fault = fault_of(rpc.purge_everything, "q")

    assert fault.faultCode == FAULT_NO_METHOD
    assert "purge_everything" in fault.faultString


def set_call(params: str = "<param><value>q</value></param><param><value>v</value></param>",
             declaration: str = "<?xml version='1.0'?>") -> bytes:
    """``set`` with raw ``<params>`` content: what would add a message if it were read."""
    return (f"{declaration}<methodCall><methodName>set</methodName><params>{params}</params>"
            "</methodCall>").encode()


HOSTILE_BODIES = [
    set_call(declaration="<?xml version='1.0' encoding='x-foo'?>"),
    set_call(declaration="<?xml version='1.0' encoding='rot13'?>"),
    set_call(declaration="<?xml version='1.0' encoding='base64'?>"),
    set_call(declaration="<?xml version='1.0' encoding='unicode_escape'?>"),
    b"<?xml version='1.0'?><methodResponse><fault><value><struct>"
    b"<member><name>faultCode</name><value><int>1</int></value></member>"
    b"<member><name>faultString</name><value><string>x</string></value></member>"
    b"</struct></value></fault></methodResponse>",
    set_call("<param><value>q</value></param><param><value><struct>"
             "<member><value><int>1</int></value></member></struct></value></param>"),
    set_call("<param><value>q</value></param><param><value><struct>"
             "<member><value><array><data/></array></value></member>"
             "<member><value>x</value></member></struct></value></param>"),
    set_call("<param><value>&x;</value></param>",
             "<?xml version='1.0'?><!DOCTYPE m [<!ENTITY x 'q'>]>"),
    set_call("<param><value>q</value></param><param><value><double>nan</double></value></param>"),
    set_call("<param><value>q</value></param>" + "<param><value><array><data>" * 12),
    set_call("<param><value>q</value></param><param><value>v</value></param>") + b"\xff",
]


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"",
        b'{"cmd": "get", "queue": "q"}',
        b"<?xml version='1.0'?><methodCall><methodName>get</methodName>",  # cut short
        xmlrpc.client.dumps(("x",), methodresponse=True).encode(),  # an answer, not a call
        b"<?xml version='1.0'?><methodCall><methodName>get</methodName><params><param>"
        b"<value><nonsense>q</nonsense></value></param></params></methodCall>",
        *HOSTILE_BODIES,
    ],
)
async def test_a_body_that_is_not_an_xmlrpc_call_answers_400_json(
    broker: Broker, clean: None, body: bytes
) -> None:
    async with no_5xx_session() as http:
        answer = await call(
            http, broker, "POST", "/xmlrpc", data=body, headers={"Content-Type": "text/xml"}
        )
        listed = await call(http, broker, "GET", "/q/", headers={"Accept": "application/json"})

    assert "XML-RPC" in assert_error(answer, 400)
    assert listed.json()["queues"] == []


async def test_xmlrpc_answers_only_post(broker: Broker, clean: None) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await call(http, broker, "GET", "/xmlrpc")

    assert_error(answer, 405)
    assert answer.headers["Allow"] == "POST"


# ---------------------------------------------------------------- Idempotency-Key, XML limits


def test_set_and_add_honour_the_idempotency_key_header(broker: Broker, clean: None) -> None:
    url = broker.url + "/xmlrpc"
    for method in ("set", "add"):
        headers = [("Idempotency-Key", f"rpc-{method}")]
        with xmlrpc.client.ServerProxy(url, allow_none=True, headers=headers) as proxy:
            first = getattr(proxy, method)("once", "v")
            assert getattr(proxy, method)("once", "v") == first
            fault = fault_of(getattr(proxy, method), "once", "other value")
            assert fault.faultCode == FAULT_BAD_INPUT and "Idempotency-Key" in fault.faultString
    with xmlrpc.client.ServerProxy(url, allow_none=True) as proxy:
        assert proxy.len("once") == 2


def test_a_value_xml_cannot_carry_comes_back_as_base64(
    rpc: xmlrpc.client.ServerProxy, broker: Broker
) -> None:
    """A message holding C0 controls was produced over REST (XML-RPC cannot send one); the
    XML-RPC answer must still be well-formed XML: the string travels as base64 of its UTF-8."""
    value = "bell\x07 and nul\x00"
    body = json.dumps({"value": value}).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(broker.url + "/q/ctl", body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b"ctl:1\r\n"
    taken = rpc.take("ctl")
    assert isinstance(taken["value"], xmlrpc.client.Binary)
    assert taken["value"].data.decode("utf-8") == value
