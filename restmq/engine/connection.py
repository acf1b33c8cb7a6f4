"""Opening the Redis/Valkey connection pool and the store on top of it."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from restmq.engine.pipeline import Pipeliner
from restmq.engine.scripts import load_scripts
from restmq.engine.store import QueueStore
from restmq.keys import Keys

SOCKET_TIMEOUT = 5.0


@dataclass(slots=True)
class Storage:
    """The live storage handles of one daemon process."""

    redis: Redis
    pipeliner: Pipeliner
    store: QueueStore
    pubsub: Redis  # its own pool: a reconnecting subscriber never holds up commands

    async def close(self) -> None:
        await self.redis.aclose()
        await self.pubsub.aclose()


def open_storage(
    url: str,
    prefix: str,
    pool_size: int,
    timeout: float = SOCKET_TIMEOUT,
    idempotency_window: float = 300.0,
) -> Storage:
    """Create the pool (lazily connected) and the store; call ``prepare`` before serving."""
    redis = Redis.from_url(
        url,
        decode_responses=True,
        max_connections=pool_size,
        socket_timeout=None,  # the pipeliner bounds each batch; pub/sub waits indefinitely
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    pipeliner = Pipeliner(redis, load_scripts(), timeout=timeout)
    # No socket timeout: redis-py then wraps each send in asyncio.wait_for, which on Python
    # 3.11 can swallow the cancellation that stops the subscriber (a hang on SIGTERM).
    pubsub = Redis.from_url(
        url,
        decode_responses=True,
        max_connections=4,
        socket_timeout=None,
        socket_connect_timeout=SOCKET_TIMEOUT,
    )
    store = QueueStore(pipeliner, Keys(prefix), idempotency_window)
    return Storage(redis, pipeliner, store, pubsub)


async def prepare(storage: Storage) -> None:
    """Load the Lua scripts (raises StorageUnavailable while Redis is down)."""
    await storage.pipeliner.load_scripts()
