"""``Client``: the blocking client, over httpx (HTTP) and websockets' sync client (WebSocket)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from typing import Self, TypeVar, overload

import httpx
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect as ws_connect

from restmq.client import calls
from restmq.client.calls import Answer, Call, error_for, finish
from restmq.client.models import (
    AckResult,
    Lease,
    Message,
    NackResult,
    QueuePolicy,
    QueueStats,
    Reserved,
)
from restmq.client.options import DEFAULT_SERVER, MAX_FRAME, Options
from restmq.client.retry import DEFAULT_RETRY, NEVER, Attempts, Retry
from restmq.client.stream import Backoff, StreamPlan, Via
from restmq.errors import ClientError, RestMQError
from restmq.types import NackOutcome, Policy

T = TypeVar("T")


def answer_of(response: httpx.Response) -> Answer:
    """The parts of an httpx response that the pure answer readers need."""
    return Answer(response.status_code, response.text, response.headers.get("Retry-After"))


def lost(url: str, exc: BaseException) -> ClientError:
    """The ClientError for a failed connection to ``url``."""
    return ClientError(f"cannot talk to {url}: {exc or type(exc).__name__}", url)


def ws_refused(exc: InvalidStatus, plan: StreamPlan) -> RestMQError:
    """The RestMQ error for a WebSocket handshake that the broker answered with an error."""
    body = exc.response.body.decode("utf-8", "replace")
    return error_for(Answer(exc.response.status_code, body), plan.queue)


class Client:
    """A blocking client of one RestMQ broker (docs/client.md).

    ``server`` is the broker's base URL; ``token`` an access key (Bearer) or ``auth`` a
    (user, password) pair for HTTP Basic; ``timeout`` bounds each request, and a long poll's
    ``wait`` is added to it. ``retry`` says how a request that failed for a transient reason
    (503, 504, the network) is repeated (``restmq.client.retry``; None: never). Errors are
    ``restmq.errors`` classes; a network failure is a ``ClientError``. Use it as a context
    manager, or call ``close``.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
        retry: Retry | None = DEFAULT_RETRY,
    ) -> None:
        self.options = Options.build(server, token, auth, timeout)
        self.retry = retry or NEVER
        self._http = httpx.Client(headers=self.options.headers, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        """Make the call, repeating it as ``self.retry`` says."""
        attempts = Attempts(self.retry, call.repeatable)
        while True:
            try:
                return self._attempt(call)
            except RestMQError as error:
                if call.settled is not None and attempts.done_before(error):
                    return call.settled()
                wait = attempts.pause(error)
                if wait is None:
                    raise
            time.sleep(wait)

    def _walk(self, walk: calls.Walk[T]) -> list[T]:
        """Every page of a listing, one request each (each retried on its own)."""
        call: Call[calls.Page[T]] | None = walk.first()
        while call is not None:
            call = walk.then(self._run(call))
        return walk.items

    def _attempt(self, call: Call[T]) -> T:
        url = self.options.url(call.path)
        try:
            response = self._http.request(
                call.method, url, json=call.body, params=call.query, headers=call.headers,
                timeout=self.options.timeout_for(call.wait),
            )
        except httpx.HTTPError as exc:
            raise lost(url, exc) from exc
        return finish(call, answer_of(response))

    # ------------------------------------------------------------------ producing

    @overload
    def add(
        self,
        queue: str,
        value: str,
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> str: ...

    @overload
    def add(
        self,
        queue: str,
        value: list[str],
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> list[str]: ...

    def add(
        self,
        queue: str,
        value: str | list[str],
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> str | list[str]:
        """Add a message (or a list of them, in one request) and return its key (their keys).

        ``ttl``: seconds after which the message disappears; ``delay``: seconds before it
        becomes visible. The request carries an ``Idempotency-Key`` (``idempotency_key``, or a
        fresh random one), kept across its retries: the broker adds the message(s) once.
        """
        if isinstance(value, list):
            return self._run(calls.add_many(queue, value, ttl, delay, idempotency_key))
        return self._run(calls.add(queue, value, ttl, delay, idempotency_key))

    # ------------------------------------------------------------------ consuming

    def get(self, queue: str) -> Message | None:
        """Soft get: the oldest message stays in the queue and its ``count`` grows by one."""
        return self._run(calls.get(queue))

    @overload
    def take(self, queue: str, *, wait: float = 0.0) -> Message | None: ...

    @overload
    def take(self, queue: str, *, count: int, wait: float = 0.0) -> list[Message]: ...

    def take(
        self, queue: str, *, count: int | None = None, wait: float = 0.0
    ) -> Message | list[Message] | None:
        """Take the oldest message (None when there is none), or up to ``count`` of them;
        ``wait``: seconds to wait for one to arrive (long polling)."""
        if count is None:
            return self._run(calls.take(queue, wait))
        return self._run(calls.take_many(queue, count, wait))

    def delete(self, queue: str, key: str) -> bool:
        """Delete a message wherever it is (waiting or leased); False if it was gone."""
        return self._run(calls.delete(queue, key))

    # ------------------------------------------------------------------ leases

    @overload
    def reserve(
        self, queue: str, *, timeout: float | None = None, wait: float = 0.0
    ) -> Reserved | None: ...

    @overload
    def reserve(
        self, queue: str, *, count: int, timeout: float | None = None, wait: float = 0.0
    ) -> list[Reserved]: ...

    def reserve(
        self,
        queue: str,
        *,
        count: int | None = None,
        timeout: float | None = None,
        wait: float = 0.0,
    ) -> Reserved | list[Reserved] | None:
        """Lease the oldest message (or up to ``count``) for ``timeout`` seconds (the broker's
        default is 30); unless acknowledged in time it goes back to the front of its queue."""
        if count is None:
            return self._run(calls.reserve(queue, timeout, wait))
        return self._run(calls.reserve_many(queue, count, timeout, wait))

    def ack(self, lease: Lease) -> None:
        """Acknowledge a leased message: it is deleted. ``StaleReceipt`` if the lease is over."""
        self._run(calls.ack(lease))

    def nack(self, lease: Lease, delay: float | None = None) -> NackOutcome:
        """Give a leased message back, now or after ``delay`` seconds (or to the dead letters)."""
        return self._run(calls.nack(lease, delay))

    def extend(self, lease: Lease, timeout: float | None = None) -> float:
        """Make a lease last ``timeout`` more seconds from now; returns the timeout granted."""
        return self._run(calls.extend(lease, timeout))

    def ack_many(self, leases: Iterable[Lease]) -> AckResult:
        """Acknowledge many leases, one request per queue and 1000 leases; each is settled on
        its own: the result lists those acknowledged and those that failed, and why."""
        groups = calls.by_queue(list(leases))
        return calls.joined_acks([self._run(calls.ack_many(q, g)) for q, g in groups])

    def nack_many(self, leases: Iterable[Lease], delay: float | None = None) -> NackResult:
        """Give many leases back (after ``delay`` seconds), one request per queue and 1000
        leases; the result says where each went, and which failed and why."""
        groups = calls.by_queue(list(leases))
        return calls.joined_nacks([self._run(calls.nack_many(q, g, delay)) for q, g in groups])

    # ------------------------------------------------------------------ administration

    def policy(self, queue: str) -> QueuePolicy:
        """The queue's delivery policy and dead-letter limit."""
        return self._run(calls.policy(queue))

    def set_policy(
        self, queue: str, policy: Policy | None = None, max_deliveries: int | None = None
    ) -> QueuePolicy:
        """Set the delivery policy and/or ``max_deliveries`` (0 clears it)."""
        return self._run(calls.set_policy(queue, policy, max_deliveries))

    def pause(self, queue: str) -> None:
        """Stop delivering the queue's messages to streaming consumers; they accumulate."""
        self._run(calls.control(queue, "stop"))

    def resume(self, queue: str) -> None:
        """Start delivering again, the backlog first."""
        self._run(calls.control(queue, "start"))

    @overload
    def stats(self) -> dict[str, QueueStats]: ...

    @overload
    def stats(self, queue: str) -> QueueStats: ...

    def stats(self, queue: str | None = None) -> QueueStats | dict[str, QueueStats]:
        """The counts of one queue, or of every queue by name.

        The broker lists the queues a page at a time (up to 1000 per request): every page is
        read, one request each, in name order; a queue added or purged meanwhile may or may
        not be in the result.
        """
        if queue is None:
            return {s.name: s for s in self._walk(calls.Walk(calls.stats_page))}
        return self._run(calls.stats(queue))

    def queues(self) -> list[str]:
        """The names of every queue, in name order: every page of the listing, as ``stats``."""
        return self._walk(calls.Walk(calls.queue_page))

    def purge(self, queue: str) -> int:
        """Remove the queue whole (messages, leases, counters) and close its streaming
        consumers; returns how many messages were removed."""
        return self._run(calls.purge(queue))

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        queue: str,
        via: Via = "sse",
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        idle_timeout: float = 60.0,
        max_backoff: float = 5.0,
    ) -> Generator[Message, None, None]:
        """Yield the queue's messages as the broker delivers them, over ``via``: ``"sse"``,
        ``"comet"`` or ``"ws"``.

        A dropped connection (or one silent for ``idle_timeout`` seconds) is opened again after
        a backoff of up to ``max_backoff`` seconds; over SSE with ``Last-Event-ID`` set to the
        last key seen, so the broadcast messages missed meanwhile are replayed. With
        ``reconnect=False`` the iterator ends with the connection, and errors are raised.
        """
        backoff = Backoff(maximum=max_backoff)
        plan = StreamPlan(queue, via, idle_timeout, last_event_id, backoff, reconnect)
        return self._stream(plan)

    def _stream(self, plan: StreamPlan) -> Generator[Message, None, None]:
        while True:
            error: RestMQError | None = None
            try:
                yield from self._connection(plan)
            except RestMQError as exc:
                error = exc
            if self._http.is_closed:  # closed meanwhile: the stream ends with its client
                return
            delay = plan.pause(error)
            if delay is None:
                return
            time.sleep(delay)

    def _connection(self, plan: StreamPlan) -> Iterator[Message]:
        decoder = plan.decoder()
        chunks = self._ws_frames(plan) if plan.via == "ws" else self._http_text(plan)
        for chunk in chunks:
            for message in decoder.feed(chunk):
                plan.seen(message)
                yield message

    def _http_text(self, plan: StreamPlan) -> Iterator[str]:
        url = self.options.url(plan.path())
        timeout = httpx.Timeout(self.options.timeout, read=plan.idle_timeout)
        try:
            with self._http.stream("GET", url, headers=plan.headers(), timeout=timeout) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise error_for(answer_of(reply), plan.queue)
                plan.connected()
                yield from reply.iter_text()
        except httpx.HTTPError as exc:
            raise lost(url, exc) from exc

    def _ws_frames(self, plan: StreamPlan) -> Iterator[str]:
        url = self.options.ws_url(plan.path())
        ping = plan.idle_timeout / 3
        try:
            with ws_connect(
                url, additional_headers=self.options.headers, open_timeout=self.options.timeout,
                ping_interval=ping, ping_timeout=ping, max_size=MAX_FRAME,
            ) as ws:
                plan.connected()
                yield from (frame for frame in ws if isinstance(frame, str))
        except InvalidStatus as exc:
            raise ws_refused(exc, plan) from None
        except (WebSocketException, OSError) as exc:
            raise lost(url, exc) from exc
