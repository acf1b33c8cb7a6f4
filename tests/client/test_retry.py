"""The client's retries (docs/client.md, SPEC §3.8): the policy as a table of cases, then the
sync and asyncio clients against a scripted aiohttp server that answers 503, 504 or drops the
connection before it answers as a broker would.

The scripted server stands in for a broker whose storage fails on cue; the same retries
against a real broker over a stalled Redis are in test_retry_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from restmq.client import AsyncClient, Client, Lease, Retry, calls
from restmq.client.retry import NEVER, transient
from restmq.errors import (
    BadRequest,
    ClientError,
    MessageGone,
    OutcomeUnknown,
    RestMQError,
    StaleReceipt,
    StorageUnavailable,
    UnexpectedAnswer,
)
from tests.helpers.broker import free_port

QUICK = Retry(attempts=4, total=10.0, initial=0.01, maximum=0.02)


def lost(cause: Exception) -> ClientError:
    """A ClientError as the client raises it: caused by the httpx failure."""
    error = ClientError("cannot talk to the broker", "http://127.0.0.1:1")
    error.__cause__ = cause
    return error


def unavailable(retry_after: int = 0) -> StorageUnavailable:
    error = StorageUnavailable("storage unavailable")
    error.retry_after = retry_after
    return error


def unknown(retry_after: int = 0) -> OutcomeUnknown:
    error = OutcomeUnknown("outcome unknown")
    error.retry_after = retry_after
    return error


# ---------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    ("error", "repeatable", "again"),
    [
        (unavailable(), True, True),
        (unavailable(), False, True),  # 503: nothing changed, even a take is repeated
        (unknown(), True, True),
        (unknown(), False, False),  # 504: a take may have removed a message
        (lost(httpx.ConnectError("refused")), False, True),  # never sent
        (lost(httpx.ConnectTimeout("slow")), False, True),
        (lost(httpx.PoolTimeout("busy")), False, True),
        (lost(httpx.ReadTimeout("no answer")), True, True),  # sent, no answer
        (lost(httpx.ReadTimeout("no answer")), False, False),
        (lost(httpx.RemoteProtocolError("dropped")), False, False),
        (BadRequest("bad"), True, False),
        (MessageGone("q", "q:1"), True, False),
        (StaleReceipt("q", "q:1"), True, False),
        (UnexpectedAnswer(500, "internal error"), True, False),
    ],
)
def test_only_transient_failures_that_are_safe_to_repeat_are_retried(
    error: RestMQError, repeatable: bool, again: bool
) -> None:
    assert transient(error, repeatable) is again
    assert (QUICK.pause(error, 1, 0.0, repeatable) is not None) is again


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7, 8])
def test_the_backoff_doubles_up_to_its_cap_with_jitter(attempt: int) -> None:
    retry = Retry(attempts=10, initial=0.25, maximum=8.0)
    ceiling = min(8.0, 0.25 * 2 ** (attempt - 1))
    waits = [retry.pause(unavailable(), attempt, 0.0) for _ in range(50)]
    assert all(w is not None and ceiling / 2 <= w <= ceiling for w in waits), waits


def test_a_retry_after_is_the_shortest_wait() -> None:
    assert QUICK.pause(unavailable(retry_after=3), 1, 0.0) == 3
    assert QUICK.pause(unknown(retry_after=2), 1, 0.0) == 2


def test_no_attempt_starts_past_the_attempts_or_the_total_time() -> None:
    retry = Retry(attempts=3, total=5.0, initial=0.1, maximum=0.1)
    assert retry.pause(unavailable(), 2, 0.0) is not None
    assert retry.pause(unavailable(), 3, 0.0) is None
    assert retry.pause(unavailable(), 1, 4.95) is None  # 4.95 + ≥ 0.05 > 5 is possible …
    assert retry.pause(unavailable(retry_after=1), 1, 4.5) is None  # … this one is certain
    assert NEVER.pause(unavailable(), 1, 0.0) is None


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"total": -1}, {"initial": 0}, {"initial": 2, "maximum": 1}]
)
def test_a_retry_policy_that_makes_no_sense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- a scripted server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], str]  # status, headers, body
DROP: Answer = (0, {}, "")  # close the connection without an answer


@dataclass
class Scripted:
    """An aiohttp server in a thread of its own: each request gets the next scripted answer
    (status, headers, body), or DROP; every request is recorded."""

    answers: deque[Answer] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers),
                              await request.read()))
        status, headers, body = self.answers.popleft() if self.answers else (599, {}, "")
        if status == 0:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        return web.Response(status=status, headers=headers, text=body,
                            content_type="application/json" if body[:1] == "{" else "text/plain")


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


UNAVAILABLE: Answer = (503, {"Retry-After": "0"}, '{"error": "storage unavailable"}')
UNKNOWN: Answer = (504, {"Retry-After": "0"}, '{"error": "outcome unknown"}')
KEY: Answer = (200, {}, "q:1\r\n")
TAKEN: Answer = (200, {}, '{"key": "q:1", "value": "v", "count": 0}')
EMPTY: Answer = (204, {}, "")


def keys_sent(server: Scripted) -> list[str | None]:
    return [seen.headers.get("Idempotency-Key") for seen in server.seen]


def test_an_add_is_retried_through_503_504_and_a_drop_with_one_idempotency_key(
    scripted: Scripted,
) -> None:
    scripted.script(UNAVAILABLE, UNKNOWN, DROP, KEY)
    with Client(scripted.url, retry=QUICK) as mq:
        assert mq.add("q", "v") == "q:1"
    sent = keys_sent(scripted)
    assert len(sent) == 4 and sent[0] and len(set(sent)) == 1


def test_each_add_has_a_key_of_its_own_unless_the_caller_gives_one(scripted: Scripted) -> None:
    scripted.script(KEY, KEY, (200, {}, '{"queue": "q", "keys": ["q:2"]}'), KEY)
    with Client(scripted.url, retry=QUICK) as mq:
        mq.add("q", "a")
        mq.add("q", "b")
        mq.add("q", ["c"])
        mq.add("q", "d", idempotency_key="order-17")
    first, second, batch, own = keys_sent(scripted)
    assert len({first, second, batch}) == 3 and own == "order-17"


async def test_the_async_client_retries_the_same_way(scripted: Scripted) -> None:
    scripted.script(UNKNOWN, UNAVAILABLE, KEY)
    async with AsyncClient(scripted.url, retry=QUICK) as mq:
        assert await mq.add("q", "v", idempotency_key="k") == "q:1"
    assert keys_sent(scripted) == ["k", "k", "k"]


def test_a_take_is_retried_on_503_but_a_504_or_a_drop_is_raised(scripted: Scripted) -> None:
    scripted.script(UNAVAILABLE, TAKEN, UNKNOWN, DROP)
    with Client(scripted.url, retry=QUICK) as mq:
        message = mq.take("q")
        with pytest.raises(OutcomeUnknown):
            mq.take("q")
        with pytest.raises(ClientError):
            mq.take("q", count=2)
    assert message is not None and message.key == "q:1"
    assert len(scripted.seen) == 4


async def test_an_async_take_raises_a_504_at_once(scripted: Scripted) -> None:
    scripted.script(UNKNOWN, EMPTY)
    async with AsyncClient(scripted.url, retry=QUICK) as mq:
        with pytest.raises(OutcomeUnknown):
            await mq.take("q")
    assert len(scripted.seen) == 1


def test_reserve_ack_nack_extend_and_reads_are_retried_on_504(scripted: Scripted) -> None:
    reserved = '{"queue": "q", "key": "q:1", "value": "v", "receipt": "r", "deliveries": 1}'
    scripted.script(
        UNKNOWN, (200, {}, reserved),
        UNKNOWN, (200, {}, '{"queue": "q", "key": "q:1", "acked": true}'),
        UNKNOWN, (200, {}, '{"queue": "q", "key": "q:1", "outcome": "requeued"}'),
        UNKNOWN, (200, {}, '{"queue": "q", "key": "q:1", "timeout": 30}'),
        UNAVAILABLE, (200, {}, '{"queues": ["q"]}'),
    )
    lease = Lease("q", "q:1", "r")
    with Client(scripted.url, retry=QUICK) as mq:
        assert mq.reserve("q") is not None
        mq.ack(lease)
        assert mq.nack(lease) == "requeued"
        assert mq.extend(lease, 30) == 30
        assert mq.queues() == ["q"]
    assert len(scripted.seen) == 10


def test_a_retry_after_is_waited_for(scripted: Scripted) -> None:
    scripted.script((503, {"Retry-After": "1"}, '{"error": "storage unavailable"}'), KEY)
    with Client(scripted.url, retry=QUICK) as mq:
        started = time.monotonic()
        mq.add("q", "v")
        assert time.monotonic() - started >= 1.0


def test_the_last_error_is_raised_when_the_attempts_run_out(scripted: Scripted) -> None:
    scripted.script(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, KEY)
    retry = Retry(attempts=3, initial=0.01, maximum=0.01)
    with Client(scripted.url, retry=retry) as mq, pytest.raises(StorageUnavailable):
        mq.add("q", "v")
    assert len(scripted.seen) == 3


def test_without_retries_the_first_error_is_raised(scripted: Scripted) -> None:
    scripted.script(UNKNOWN, KEY)
    with Client(scripted.url, retry=None) as mq, pytest.raises(OutcomeUnknown):
        mq.add("q", "v")
    assert len(scripted.seen) == 1


def test_refusals_are_not_retried(scripted: Scripted) -> None:
    scripted.script((409, {}, '{"error": "message q:1 is not leased"}'), KEY)
    with Client(scripted.url, retry=QUICK) as mq, pytest.raises(StaleReceipt, match="not leased"):
        mq.ack(Lease("q", "q:1", "r"))
    assert len(scripted.seen) == 1


def test_a_broker_that_refuses_connections_is_tried_again_even_for_a_take() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with Client(nowhere, retry=Retry(attempts=3, initial=0.01, maximum=0.01)) as mq:
        started = time.monotonic()
        with pytest.raises(ClientError) as raised:
            mq.take("q")
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert time.monotonic() - started >= 0.01  # two waits of 5 to 10 ms


def test_batch_acks_and_nacks_go_one_request_per_queue_and_thousand(scripted: Scripted) -> None:
    leases = [Lease("a", f"a:{n}", "r") for n in range(1, 1202)] + [Lease("b", "b:1", "r")]
    keys = [lease.key for lease in leases]
    failed = [{"key": "a:1201", "error": "no such message: a:1201"}]
    scripted.script(
        ok({"queue": "a", "acked": keys[:1000], "failed": []}),
        UNKNOWN,
        ok({"queue": "a", "acked": keys[1000:1200], "failed": failed}),
        ok({"queue": "b", "nacked": [{"key": "b:1", "outcome": "delayed"}], "failed": []}),
    )
    with Client(scripted.url, retry=QUICK) as mq:
        result = mq.ack_many(leases[:-1])
        nacked = mq.nack_many(leases[-1:], delay=5)
    assert result.acked == keys[:1200]
    assert [(f.queue, f.key, f.error) for f in result.failed] == [
        ("a", "a:1201", "no such message: a:1201")
    ]
    assert nacked.nacked == {"b:1": "delayed"} and nacked.failed == []
    assert [s.path for s in scripted.seen] == ["/q/a/ack"] * 3 + ["/q/b/nack"]
    sent = json.loads(scripted.seen[-1].body)
    assert sent == {"messages": [{"key": "b:1", "receipt": "r"}], "delay": 5}


def ok(body: object) -> Answer:
    return 200, {}, json.dumps(body)


def test_the_calls_say_what_may_be_repeated() -> None:
    assert not calls.take("q", 0).repeatable and not calls.take_many("q", 2, 0).repeatable
    assert all(
        call.repeatable
        for call in (calls.add("q", "v", None, None), calls.get("q"), calls.reserve("q", None, 0),
                     calls.ack(Lease("q", "q:1", "r")), calls.purge("q"), calls.stats("q"))
    )


GONE: Answer = (404, {}, '{"error": "no such message: q:1"}')


@pytest.mark.parametrize(
    ("first", "done"),
    [(UNKNOWN, True), (DROP, True), (UNAVAILABLE, False), (GONE, False)],
)
def test_an_ack_that_finds_its_message_gone_after_an_unknown_outcome_is_done(
    scripted: Scripted, first: Answer, done: bool
) -> None:
    scripted.script(first, GONE)
    with Client(scripted.url, retry=QUICK) as mq:
        if done:
            mq.ack(Lease("q", "q:1", "r"))
        else:
            with pytest.raises(MessageGone):
                mq.ack(Lease("q", "q:1", "r"))


async def test_a_nack_after_an_unknown_outcome_still_raises_what_the_retry_found(
    scripted: Scripted,
) -> None:
    stale = (409, {}, '{"error": "wrong or expired receipt for q:1: the lease is not yours"}')
    scripted.script(UNKNOWN, stale, UNKNOWN, GONE)
    async with AsyncClient(scripted.url, retry=QUICK) as mq:
        with pytest.raises(StaleReceipt):
            await mq.nack(Lease("q", "q:1", "r"))
        await mq.ack(Lease("q", "q:1", "r"))
