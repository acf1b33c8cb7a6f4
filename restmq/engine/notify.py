"""The daemon's pub/sub link: one subscriber connection, resubscribed after any failure.

How this works: ``run`` keeps a redis-py PubSub connection subscribed to every channel in
``self._channels`` and hands each published message to ``on_message(channel, data)``. A
``subscribe`` call returns once Redis has confirmed the subscription, so a caller knows that
every message published afterwards will reach it. When the connection fails, ``run`` waits
with a capped backoff, connects again, resubscribes everything and calls ``on_reconnect``
(wake-ups may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from restmq.errors import StorageUnavailable

log = logging.getLogger("restmq.notify")
MAX_BACKOFF = 2.0
CONFIRM_TIMEOUT = 5.0


class Subscriber:
    """Subscriptions of one daemon, surviving Redis restarts."""

    def __init__(
        self,
        redis: Redis,
        on_message: Callable[[str, str], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._channels: set[str] = set()
        self._pending: dict[str, list[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def subscribe(self, channel: str) -> None:
        """Subscribe and wait for Redis's confirmation (or the next reconnect)."""
        if channel in self._channels and self.connected and channel not in self._pending:
            return  # subscribed and confirmed
        self._channels.add(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._pending.setdefault(channel, [])
        waiters.append(waiter)
        if len(waiters) == 1 and self._pubsub is not None and self.connected:
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await self._pubsub.subscribe(channel)
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):  # not wait_for: see connection.py
                await asyncio.shield(waiter)
        except TimeoutError:
            if waiter in self._pending.get(channel, []):
                self._pending[channel].remove(waiter)
                if not self._pending[channel]:
                    del self._pending[channel]  # the next subscribe sends SUBSCRIBE again
            raise StorageUnavailable("the pub/sub link is not ready") from None

    def keep(self, channel: str) -> None:
        """Subscribe from the next (re)connection on, without waiting for it (used at start,
        so a daemon can start while Redis is down and answer 503 until it is back)."""
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        if self._pubsub is not None and self.connected:
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def run(self) -> None:
        """Listen forever (cancel to stop), reconnecting with a capped backoff."""
        backoff = 0.05
        while True:
            try:
                await self._listen()
            except (redis_errors.RedisError, OSError) as exc:
                if self._ready.is_set():  # a working link broke: one line, then quiet retries
                    log.warning("pub/sub link lost (%s); reconnecting", type(exc).__name__)
                    backoff = 0.05
                else:
                    log.debug("pub/sub link still down (%s)", type(exc).__name__)
            finally:
                self._ready.clear()
                await self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _listen(self) -> None:
        self._pubsub = self._redis.pubsub()
        first = set(self._channels)
        await self._pubsub.subscribe(*first)
        self._ready.set()
        # A channel added while that SUBSCRIBE was on its way saw the link not ready and sent
        # nothing: subscribe it now, or its waiter would wait for the next reconnect.
        late = self._channels - first
        if late:
            await self._pubsub.subscribe(*late)
        self._on_reconnect()
        while True:
            message = await self._pubsub.get_message(timeout=None)
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], _text(message["channel"])
        if kind == "message":
            self._on_message(channel, _text(message["data"]))
        elif kind == "subscribe":
            for waiter in self._pending.pop(channel, []):
                if not waiter.done():
                    waiter.set_result(None)

    async def _close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
