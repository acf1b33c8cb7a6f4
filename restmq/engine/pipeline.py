"""Automatic pipelining: the Redis commands of concurrent requests share one round trip.

How this works: ``call`` parks a command and a future in the pending batch; the first command
of a batch schedules ``_flush`` for the next turn of the event loop, so every request handled
in the same turn joins it. The batch goes out as one non-transactional pipeline on one pooled
connection; each future gets its own reply (or its own error). Scripts are called by SHA; when
Redis answers NOSCRIPT (it restarted and forgot them) the scripts are loaded again and only
those commands are retried — a script that did not run changed nothing, so this is safe.

Commands are encoded by ``resp`` (with the constant part of script calls cached) and written
to a pooled redis-py connection in one write; redis-py and hiredis read the replies. One
timeout covers the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from restmq.engine import resp
from restmq.engine.scripts import Script, ScriptName
from restmq.errors import StorageError, StorageUnavailable

Command = bytes  # one RESP-encoded command
BATCH_TIMEOUT = 5.0
# Batches out at once: enough to overlap one batch's round trip with building the next, few
# enough that batches grow under load (fewer writes) and the connection pool never runs dry.
MAX_IN_FLIGHT = 2
UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    OSError,
)

# Error replies that mean "try again later", not "bug".
UNAVAILABLE_REPLIES = frozenset({"OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"})


class Pipeliner:
    """Sends the commands of one event-loop turn in one pipeline (up to ``max_batch``)."""

    def __init__(
        self, redis: Redis, scripts: dict[ScriptName, Script], max_batch: int = 1000
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._max_batch = max_batch
        self._pending: list[tuple[Command, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, *command: resp.Arg) -> Any:
        """Run one Redis command in the next pipeline and return its reply."""
        return await self._queue(resp.pack(command))

    async def _queue(self, command: Command) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= self._max_batch:
            self._flush()
        return await future

    async def script(self, name: ScriptName, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a Lua script by SHA in the next pipeline and return its reply."""
        return await self._queue(resp.pack_script(self._scripts[name].sha, keys, args))

    async def load_scripts(self) -> None:
        """Load every script into Redis (SCRIPT LOAD is idempotent)."""
        try:
            for script in self._scripts.values():
                await self._redis.script_load(script.source)
        except UNAVAILABLE as exc:
            raise StorageUnavailable(f"storage unavailable: {exc}") from None

    def _flush(self) -> None:
        """Send the pending batch, unless MAX_IN_FLIGHT batches are out: then it keeps
        growing and goes when one of them is answered."""
        while self._pending and len(self._tasks) < MAX_IN_FLIGHT:
            size = self._max_batch
            batch, self._pending = self._pending[:size], self._pending[size:]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._flush()

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._execute([command for command, _ in batch])
            if any(_is_noscript(reply) for reply in replies):
                replies = await self._retry_noscript(batch, replies)
        except StorageUnavailable as exc:
            replies = [exc] * len(batch)
        except BaseException as exc:  # cancelled or a bug: never leave a request hanging
            replies = [StorageError(f"storage error: {exc!r}")] * len(batch)
            if isinstance(exc, asyncio.CancelledError):
                _settle(batch, replies)
                raise
        _settle(batch, replies)

    async def _execute(self, commands: list[Command]) -> list[Any]:
        pool = self._redis.connection_pool
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        except UNAVAILABLE as exc:
            raise StorageUnavailable(f"storage unavailable: {type(exc).__name__}") from None
        try:
            async with asyncio.timeout(BATCH_TIMEOUT):
                await connection.send_packed_command(b"".join(commands), check_health=False)
                return [_translate(await _reply(connection)) for _ in commands]
        except (*UNAVAILABLE, TimeoutError) as exc:
            await connection.disconnect(nowait=True)
            raise StorageUnavailable(f"storage unavailable: {type(exc).__name__}") from None
        except BaseException:
            await connection.disconnect(nowait=True)  # replies may be left unread
            raise
        finally:
            await pool.release(connection)

    async def _retry_noscript(
        self, batch: list[tuple[Command, asyncio.Future[Any]]], replies: list[Any]
    ) -> list[Any]:
        await self.load_scripts()
        retry = [i for i, reply in enumerate(replies) if _is_noscript(reply)]
        again = await self._execute([batch[i][0] for i in retry])
        for index, reply in zip(retry, again, strict=True):
            replies[index] = reply
        return replies


async def _reply(connection: AbstractConnection) -> Any:
    """One reply; an error reply is returned (as its exception), not raised."""
    try:
        return await connection.read_response()
    except redis_errors.ResponseError as exc:
        return exc


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, StorageError) and "NOSCRIPT" in reply.message


def _translate(reply: Any) -> Any:
    if isinstance(reply, redis_errors.NoScriptError):
        return StorageError("NOSCRIPT")
    if isinstance(reply, redis_errors.BusyLoadingError):
        return StorageUnavailable("storage is loading its data")
    if isinstance(reply, redis_errors.RedisError):
        if str(reply).split(" ", 1)[0] in UNAVAILABLE_REPLIES:
            return StorageUnavailable(f"storage unavailable: {reply}")
        return StorageError(f"storage error: {reply}")
    return reply


def _settle(batch: list[tuple[Command, asyncio.Future[Any]]], replies: list[Any]) -> None:
    for (_, future), reply in zip(batch, replies, strict=True):
        if future.done():
            continue
        if isinstance(reply, BaseException):
            future.set_exception(reply)
        else:
            future.set_result(reply)
