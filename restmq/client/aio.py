"""``AsyncClient``: the asyncio client, over httpx (HTTP) and websockets' asyncio client.

The same operations as ``Client``, built from the same ``calls`` and ``stream`` plans; only the
I/O differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Self, TypeVar, overload

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus, WebSocketException

from restmq.client import calls
from restmq.client.calls import Call, error_for, finish
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
from restmq.client.sync import answer_of, lost, ws_refused
from restmq.errors import RestMQError
from restmq.types import NackOutcome, Policy

T = TypeVar("T")


class AsyncClient:
    """An asyncio client of one RestMQ broker; see ``Client`` for the arguments and errors.

    Use it as an async context manager, or await ``close``.
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
        self._http = httpx.AsyncClient(headers=self.options.headers, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        """Make the call, repeating it as ``self.retry`` says."""
        attempts = Attempts(self.retry, call.repeatable)
        while True:
            try:
                return await self._attempt(call)
            except RestMQError as error:
                if call.settled is not None and attempts.done_before(error):
                    return call.settled()
                wait = attempts.pause(error)
                if wait is None:
                    raise
            await asyncio.sleep(wait)

    async def _walk(self, walk: calls.Walk[T]) -> list[T]:
        """Every page of a listing, one request each (each retried on its own)."""
        call: Call[calls.Page[T]] | None = walk.first()
        while call is not None:
            call = walk.then(await self._run(call))
        return walk.items

    async def _attempt(self, call: Call[T]) -> T:
        url = self.options.url(call.path)
        try:
            response = await self._http.request(
                call.method, url, json=call.body, params=call.query, headers=call.headers,
                timeout=self.options.timeout_for(call.wait),
            )
        except httpx.HTTPError as exc:
            raise lost(url, exc) from exc
        return finish(call, answer_of(response))

    # ------------------------------------------------------------------ producing

    @overload
    async def add(
        self,
        queue: str,
        value: str,
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> str: ...

    @overload
    async def add(
        self,
        queue: str,
        value: list[str],
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> list[str]: ...

    async def add(
        self,
        queue: str,
        value: str | list[str],
        *,
        ttl: float | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> str | list[str]:
        """Add a message (or a list of them, in one request); returns its key (their keys).
        Its retries carry the same ``Idempotency-Key``, so it is added once."""
        if isinstance(value, list):
            return await self._run(calls.add_many(queue, value, ttl, delay, idempotency_key))
        return await self._run(calls.add(queue, value, ttl, delay, idempotency_key))

    # ------------------------------------------------------------------ consuming

    async def get(self, queue: str) -> Message | None:
        """Soft get: the oldest message stays in the queue and its ``count`` grows by one."""
        return await self._run(calls.get(queue))

    @overload
    async def take(self, queue: str, *, wait: float = 0.0) -> Message | None: ...

    @overload
    async def take(self, queue: str, *, count: int, wait: float = 0.0) -> list[Message]: ...

    async def take(
        self, queue: str, *, count: int | None = None, wait: float = 0.0
    ) -> Message | list[Message] | None:
        """Take the oldest message (None when there is none), or up to ``count``."""
        if count is None:
            return await self._run(calls.take(queue, wait))
        return await self._run(calls.take_many(queue, count, wait))

    async def delete(self, queue: str, key: str) -> bool:
        """Delete a message wherever it is (waiting or leased); False if it was gone."""
        return await self._run(calls.delete(queue, key))

    # ------------------------------------------------------------------ leases

    @overload
    async def reserve(
        self, queue: str, *, timeout: float | None = None, wait: float = 0.0
    ) -> Reserved | None: ...

    @overload
    async def reserve(
        self, queue: str, *, count: int, timeout: float | None = None, wait: float = 0.0
    ) -> list[Reserved]: ...

    async def reserve(
        self,
        queue: str,
        *,
        count: int | None = None,
        timeout: float | None = None,
        wait: float = 0.0,
    ) -> Reserved | list[Reserved] | None:
        """Lease the oldest message (or up to ``count``) for ``timeout`` seconds."""
        if count is None:
            return await self._run(calls.reserve(queue, timeout, wait))
        return await self._run(calls.reserve_many(queue, count, timeout, wait))

    async def ack(self, lease: Lease) -> None:
        """Acknowledge a leased message: it is deleted."""
        await self._run(calls.ack(lease))

    async def nack(self, lease: Lease, delay: float | None = None) -> NackOutcome:
        """Give a leased message back, now or after ``delay`` seconds."""
        return await self._run(calls.nack(lease, delay))

    async def extend(self, lease: Lease, timeout: float | None = None) -> float:
        """Make a lease last ``timeout`` more seconds from now."""
        return await self._run(calls.extend(lease, timeout))

    async def ack_many(self, leases: Iterable[Lease]) -> AckResult:
        """Acknowledge many leases, one request per queue and 1000 leases."""
        groups = calls.by_queue(list(leases))
        return calls.joined_acks([await self._run(calls.ack_many(q, g)) for q, g in groups])

    async def nack_many(self, leases: Iterable[Lease], delay: float | None = None) -> NackResult:
        """Give many leases back (after ``delay`` seconds), one request per queue and 1000."""
        groups = calls.by_queue(list(leases))
        results = [await self._run(calls.nack_many(q, g, delay)) for q, g in groups]
        return calls.joined_nacks(results)

    # ------------------------------------------------------------------ administration

    async def policy(self, queue: str) -> QueuePolicy:
        """The queue's delivery policy and dead-letter limit."""
        return await self._run(calls.policy(queue))

    async def set_policy(
        self, queue: str, policy: Policy | None = None, max_deliveries: int | None = None
    ) -> QueuePolicy:
        """Set the delivery policy and/or ``max_deliveries`` (0 clears it)."""
        return await self._run(calls.set_policy(queue, policy, max_deliveries))

    async def pause(self, queue: str) -> None:
        """Stop delivering the queue's messages to streaming consumers."""
        await self._run(calls.control(queue, "stop"))

    async def resume(self, queue: str) -> None:
        """Start delivering again, the backlog first."""
        await self._run(calls.control(queue, "start"))

    @overload
    async def stats(self) -> dict[str, QueueStats]: ...

    @overload
    async def stats(self, queue: str) -> QueueStats: ...

    async def stats(self, queue: str | None = None) -> QueueStats | dict[str, QueueStats]:
        """The counts of one queue, or of every queue by name (every page of the listing)."""
        if queue is None:
            return {s.name: s for s in await self._walk(calls.Walk(calls.stats_page))}
        return await self._run(calls.stats(queue))

    async def queues(self) -> list[str]:
        """The names of every queue, in name order (every page of the listing)."""
        return await self._walk(calls.Walk(calls.queue_page))

    async def purge(self, queue: str) -> int:
        """Remove the queue whole; returns how many messages were removed."""
        return await self._run(calls.purge(queue))

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
    ) -> AsyncGenerator[Message, None]:
        """``async for`` over the queue's messages as delivered; see ``Client.stream``.

        Leaving the loop early closes the connection when the iterator is collected; wrap it
        in ``contextlib.aclosing`` to close it at once.
        """
        backoff = Backoff(maximum=max_backoff)
        plan = StreamPlan(queue, via, idle_timeout, last_event_id, backoff, reconnect)
        return self._stream(plan)

    async def _stream(self, plan: StreamPlan) -> AsyncGenerator[Message, None]:
        while True:
            error: RestMQError | None = None
            try:
                async with aclosing(self._connection(plan)) as messages:
                    async for message in messages:
                        yield message
            except RestMQError as exc:
                error = exc
            if self._http.is_closed:  # closed meanwhile: the stream ends with its client
                return
            delay = plan.pause(error)
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def _connection(self, plan: StreamPlan) -> AsyncGenerator[Message, None]:
        decoder = plan.decoder()
        chunks = self._ws_frames(plan) if plan.via == "ws" else self._http_text(plan)
        async with aclosing(chunks):
            async for chunk in chunks:
                for message in decoder.feed(chunk):
                    plan.seen(message)
                    yield message

    async def _http_text(self, plan: StreamPlan) -> AsyncGenerator[str, None]:
        url = self.options.url(plan.path())
        timeout = httpx.Timeout(self.options.timeout, read=plan.idle_timeout)
        try:
            async with self._http.stream(
                "GET", url, headers=plan.headers(), timeout=timeout
            ) as reply:
                if reply.status_code != 200:
                    await reply.aread()
                    raise error_for(answer_of(reply), plan.queue)
                plan.connected()
                async for text in reply.aiter_text():
                    yield text
        except httpx.HTTPError as exc:
            raise lost(url, exc) from exc

    async def _ws_frames(self, plan: StreamPlan) -> AsyncGenerator[str, None]:
        url = self.options.ws_url(plan.path())
        ping = plan.idle_timeout / 3
        try:
            async with ws_connect(
                url, additional_headers=self.options.headers, open_timeout=self.options.timeout,
                ping_interval=ping, ping_timeout=ping, max_size=MAX_FRAME,
            ) as ws:
                plan.connected()
                async for frame in ws:
                    if isinstance(frame, str):
                        yield frame
        except InvalidStatus as exc:
            raise ws_refused(exc, plan) from None
        except (WebSocketException, OSError) as exc:
            raise lost(url, exc) from exc
