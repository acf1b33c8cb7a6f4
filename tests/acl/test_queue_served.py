"""The queue the access decision checks is the queue the handler serves, on every route family.

An access key may read and write the queue ``pub`` only; the queue ``secret`` sits beside it.
Each request names ``pub`` in one place and ``secret`` in another (the query against a form
or JSON body, the path against a field, a JSON command against the query, a WebSocket
command against the path, an XML-RPC argument): whichever the broker serves must be the one
it checked, so ``secret`` is either refused with a 403 that names it, or left alone while
``pub`` is served. Real brokers, real keys made with ``restmq keys``, real sockets.

Also here: 403s say what the key may not do, and ``/healthz`` shows the storage address only
to a client the ACL lets see ``/stats``.
"""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.acl.brokers import Setup, create_key, every_section
from tests.acl.families import READ_TIMEOUT, bearer
from tests.conftest import Backend
from tests.helpers.wait import async_wait_until

PUB, SECRET = [f"p{n}" for n in range(1, 11)], ["s1"]
NO_SECRET_READ = "access key may not read queue 'secret'"
NO_SECRET_WRITE = "access key may not write to queue 'secret'"
NO_EVERY_READ = "access key may not read every queue (it needs '*')"
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One request, its status, and how much the length of ``pub`` changes (``secret``'s
    never does); a 403 names what the key may not do."""

    what: str
    method: str
    path: str
    kw: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    pub_delta: int = 0
    error: str | None = None


def take(queue: str) -> str:
    return json.dumps({"cmd": "take", "queue": queue})


HTTP_CASES = [
    # GET / : the query against the body (the body wins, for the check and the take alike)
    Case("GET / query pub, form secret", "GET", "/?queue=pub", {"data": {"queue": "secret"}},
         403, error=NO_SECRET_READ),
    Case("GET / query pub, JSON secret", "GET", "/?queue=pub", {"json": {"queue": "secret"}},
         403, error=NO_SECRET_READ),
    Case("GET / query secret, form pub", "GET", "/?queue=secret", {"data": {"queue": "pub"}},
         pub_delta=-1),
    Case("GET / query pub, form queue empty", "GET", "/?queue=pub", {"data": {"queue": ""}},
         403, error=NO_EVERY_READ),  # an empty form field is no queue: the page of all queues
    # POST /
    Case("POST / query pub, form secret", "POST", "/?queue=pub",
         {"data": {"queue": "secret", "value": "x"}}, 403, error=NO_SECRET_WRITE),
    Case("POST / query pub, JSON secret", "POST", "/?queue=pub",
         {"json": {"queue": "secret", "value": "x"}}, 403, error=NO_SECRET_WRITE),
    Case("POST / query secret, form pub", "POST", "/?queue=secret",
         {"data": {"queue": "pub", "value": "x"}}, pub_delta=+1),
    Case("POST / multipart secret", "POST", "/?queue=pub",
         {"data": aiohttp.FormData({"queue": "secret", "value": "x"}, default_to_multipart=True)},
         403, error=NO_SECRET_WRITE),
    # a queue in the path: a queue field anywhere else is not what is served, nor checked
    Case("GET /q/pub with queue=secret", "GET", "/q/pub?queue=secret",
         {"data": {"queue": "secret"}}, pub_delta=-1),
    Case("GET /q/secret with queue=pub", "GET", "/q/secret?queue=pub",
         {"data": {"queue": "pub"}}, 403, error=NO_SECRET_READ),
    Case("POST /q/pub with queue=secret", "POST", "/q/pub?queue=secret",
         {"json": {"queue": "secret", "value": "x"}}, pub_delta=+1),
    Case("POST /q/secret with queue=pub", "POST", "/q/secret",
         {"data": {"queue": "pub", "value": "x"}}, 403, error=NO_SECRET_WRITE),
    Case("reserve /q/pub with queue=secret", "POST", "/q/pub/reserve?queue=secret",
         {"data": {"queue": "secret"}}, pub_delta=-1),
    Case("reserve /q/secret with queue=pub", "POST", "/q/secret/reserve",
         {"data": {"queue": "pub"}}, 403, error=NO_SECRET_READ),
    Case("job page /j/pub with queue=secret", "GET", "/j/pub?queue=secret"),
    Case("job page /j/secret with queue=pub", "GET", "/j/secret?queue=pub", status=403,
         error=NO_SECRET_READ),
    # JSON commands: the command's own queue, wherever the command came from
    Case("command take secret, query pub", "POST", "/queue?queue=pub",
         {"json": {"cmd": "take", "queue": "secret"}}, 403, error=NO_SECRET_READ),
    Case("command add secret", "POST", "/queue",
         {"json": {"cmd": "add", "queue": "secret", "value": "x"}}, 403, error=NO_SECRET_WRITE),
    Case("command take pub", "POST", "/queue", {"json": {"cmd": "take", "queue": "pub"}},
         pub_delta=-1),
    Case("command secret in the form, pub in the query", "POST", "/queue?body=" + take("pub"),
         {"data": {"body": take("secret")}}, 403, error=NO_SECRET_READ),
    Case("command pub in the form, secret in the query", "POST", "/queue?body=" + take("secret"),
         {"data": {"body": take("pub")}}, pub_delta=-1),
    Case("command secret in the query, pub as the JSON body", "POST",
         "/queue?body=" + take("secret"), {"data": take("pub"), "headers": JSON_HEADERS},
         403, error=NO_SECRET_READ),
    Case("command pub in the query, secret as the JSON body", "POST",
         "/queue?body=" + take("pub"), {"data": take("secret"), "headers": JSON_HEADERS},
         pub_delta=-1),
    Case("command with its queue twice", "POST", "/queue",
         {"data": '{"cmd": "take", "queue": "pub", "queue": "secret"}', "headers": JSON_HEADERS},
         403, error=NO_SECRET_READ),
    Case("command with a queue that is not a string", "POST", "/queue",
         {"json": {"cmd": "take", "queue": ["secret"]}}, 403, error=NO_EVERY_READ),
]


async def ask(session: aiohttp.ClientSession, url: str, case: Case) -> tuple[int, Any]:
    async with session.request(case.method, url + case.path, allow_redirects=False,
                               **case.kw) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


@pytest.fixture
async def keyed(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> AsyncIterator[tuple[Setup, aiohttp.ClientSession]]:
    """A broker requiring keys, the queues pub and secret, and a session with a key for pub."""
    setup = acl_broker(every_section("access_keys = required"))
    await setup.storage.store.add("pub", PUB)
    await setup.storage.store.add("secret", SECRET)
    token = create_key(backend, "--read", "pub", "--write", "pub")
    async with aiohttp.ClientSession(headers=bearer(token), timeout=READ_TIMEOUT) as session:
        yield setup, session


async def lengths(setup: Setup) -> tuple[int, int]:
    return await setup.length("pub"), await setup.length("secret")


async def test_over_http_the_queue_checked_is_the_queue_served(
    keyed: tuple[Setup, aiohttp.ClientSession],
) -> None:
    setup, session = keyed
    for case in HTTP_CASES:
        pub, secret = await lengths(setup)
        status, body = await ask(session, setup.url, case)
        assert status == case.status, (case.what, body)
        if case.error is not None:
            assert body == {"error": case.error}, case.what
        assert await lengths(setup) == (pub + case.pub_delta, secret), case.what


async def test_streams_serve_the_queue_of_their_path_which_is_the_one_checked(
    keyed: tuple[Setup, aiohttp.ClientSession],
) -> None:
    setup, session = keyed
    for route in ["c", "sse"]:
        path = f"{setup.url}/{route}/pub?queue=secret"
        async with session.get(path, data={"queue": "secret"}) as response:
            assert response.status == 200, route
            # Broadcast reaches the consumers connected when a message comes: add it once
            # this stream is the queue's only consumer (the last one's close is seen).
            await async_wait_until(lambda: _only_one_consumer(setup), 10, "the stream counts")
            await setup.storage.store.add("pub", [route])
            async for line in response.content:
                if b'"key"' in line:
                    assert b'"pub:' in line, (route, line)
                    break
        async with session.get(f"{setup.url}/{route}/secret?queue=pub") as response:
            assert response.status == 403, route
            assert await response.json() == {"error": NO_SECRET_READ}
    assert await setup.length("secret") == len(SECRET)


async def _only_one_consumer(setup: Setup) -> bool:
    return (await setup.storage.store.stats("pub")).consumers == 1


async def answer_to(ws: aiohttp.ClientWebSocketResponse, command: dict[str, Any]) -> Any:
    """The answer frame to a command (the frames of messages streamed meanwhile skipped)."""
    await ws.send_str(json.dumps(command))
    while True:
        frame = json.loads((await ws.receive(timeout=15)).data)
        if "error" in frame or "queue" in frame:
            return frame


async def test_a_websocket_command_naming_another_queue_is_checked_for_that_queue(
    keyed: tuple[Setup, aiohttp.ClientSession],
) -> None:
    setup, session = keyed
    async with session.ws_connect(f"{setup.url}/ws/pub?queue=secret") as ws:
        assert await answer_to(ws, {"cmd": "take", "queue": "secret"}) == {
            "error": NO_SECRET_READ}
        assert await answer_to(ws, {"cmd": "get", "queue": "secret"}) == {
            "error": NO_SECRET_READ}
        assert await answer_to(ws, {"cmd": "add", "queue": "secret", "value": "x"}) == {
            "error": NO_SECRET_WRITE}
        added = await answer_to(ws, {"cmd": "add", "queue": "pub", "value": "mine"})
        assert added["queue"] == "pub" and added["key"].startswith("pub:")
    assert await setup.length("secret") == len(SECRET)


async def test_the_websocket_handshake_to_an_unreadable_queue_is_refused(
    keyed: tuple[Setup, aiohttp.ClientSession],
) -> None:
    setup, session = keyed
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await session.ws_connect(f"{setup.url}/ws/secret?queue=pub")
    assert caught.value.status == 403


async def test_an_xmlrpc_call_is_checked_for_the_queue_of_its_arguments(
    keyed: tuple[Setup, aiohttp.ClientSession],
) -> None:
    setup, session = keyed

    async def rpc(body: bytes | str) -> tuple[int, Any]:
        async with session.post(f"{setup.url}/xmlrpc", data=body) as response:
            text = await response.text()
            if response.status != 200:
                return response.status, json.loads(text)
            return 200, xmlrpc.client.loads(text)[0][0]

    assert await rpc(xmlrpc.client.dumps(("secret",), "take")) == (
        403, {"error": NO_SECRET_READ})
    assert await rpc(xmlrpc.client.dumps(("secret", "x"), "set")) == (
        403, {"error": NO_SECRET_WRITE})
    assert await rpc(xmlrpc.client.dumps(("pub",), "len")) == (200, len(PUB))
    status, taken = await rpc(xmlrpc.client.dumps(("pub",), "take"))
    assert status == 200 and taken["key"] == "pub:1"
    two_names = (b"<methodCall><methodName>len</methodName><methodName>take</methodName>"
                 b"<params><param><value>secret</value></param></params></methodCall>")
    status, _ = await rpc(two_names)
    assert status in (400, 403)
    assert await lengths(setup) == (len(PUB) - 1, len(SECRET))


# --- what a refused key is told --------------------------------------------------------------


async def test_a_403_says_what_the_access_key_may_not_do(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    await setup.storage.store.add("made", ["m"])
    token = create_key(backend, "--read", "made", "--write", "made,fresh")
    cases = [
        ("POST", "/q/fresh", {"data": {"value": "v"}},
         "access key may not create queue 'fresh'"),
        ("POST", "/q/other", {"data": {"value": "v"}},
         "access key may not write to queue 'other'"),
        ("GET", "/q/other", {}, "access key may not read queue 'other'"),
        ("GET", "/q/", {}, "access key may not read every queue (it needs '*')"),
        ("DELETE", "/q/made", {},
         "access key may not use the admin routes (it has no admin right)"),
        ("POST", "/queue", {"json": {"cmd": "zap", "queue": "made"}},
         "access key may not run the unknown command 'zap' (it has no admin right)"),
        ("POST", "/xmlrpc", {"data": xmlrpc.client.dumps(("made",), "purge")},
         "access key may not call the unknown XML-RPC method 'purge' (it has no admin right)"),
    ]
    async with aiohttp.ClientSession(headers=bearer(token), timeout=READ_TIMEOUT) as session:
        for method, path, kw, message in cases:
            async with session.request(method, setup.url + path, **kw) as response:
                assert response.status == 403, (path, await response.text())
                assert await response.json() == {"error": message}
    assert await setup.storage.store.queues() == ["made"]
    assert await setup.length("made") == 1


# --- /healthz ----------------------------------------------------------------------------------


async def test_healthz_shows_the_storage_address_only_to_who_may_see_stats(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker("[admin]\naccess_keys = required\n")
    admin = create_key(backend, "--admin")
    reader = create_key(backend, "--read", "*")

    async def health(headers: dict[str, str]) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(headers=headers, timeout=READ_TIMEOUT) as session,
            session.get(setup.url + "/healthz") as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

    async def stats_status(headers: dict[str, str]) -> int:
        async with (
            aiohttp.ClientSession(headers=headers, timeout=READ_TIMEOUT) as session,
            session.get(setup.url + "/stats") as response,
        ):
            return response.status

    for headers in [{}, bearer(reader), bearer("rmq_unknown")]:
        assert await stats_status(headers) in (401, 403)
        assert await health(headers) == {"status": "ok", "pubsub": "up"}
    assert await stats_status(bearer(admin)) == 200
    shown = await health(bearer(admin))
    assert list(shown) == ["status", "redis", "pubsub"] and shown["redis"]


async def test_healthz_shows_the_storage_address_when_the_acl_lets_everyone_see_stats(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker("[rest:producer]\nhosts_allow = all\n")
    async with (
        aiohttp.ClientSession(timeout=READ_TIMEOUT) as session,
        session.get(setup.url + "/healthz") as response,
    ):
        body = await response.json()
    assert list(body) == ["status", "redis", "pubsub"] and body["redis"]
