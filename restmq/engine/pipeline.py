"""Automatic pipelining: the Redis commands of concurrent requests share one round trip.

How this works: ``call`` parks a command and a future in the pending batch; the first command
of a batch schedules ``_flush`` for the next turn of the event loop, so every request handled
in the same turn joins it. The batch goes out as one non-transactional pipeline on one pooled
connection; each future gets its own reply (or its own error). Scripts are called by SHA; when
Redis answers NOSCRIPT (it restarted and forgot them) the scripts are loaded again and only
those commands are retried — a script that did not run changed nothing, so this is safe.

Deadlines (SPEC §3.8). Every call waits at most until the current deadline
(``restmq.deadline``); a batch, from taking a pooled connection to its last reply, at most
``timeout``. So a stalled Redis turns into answers in time, however many calls queue behind
it. What the caller is told depends on whether its command reached Redis: a call still
waiting in the pending batch when its time runs out is *abandoned* — it will never be sent —
and raises StorageUnavailable (503: nothing changed). A command that was written but whose
reply never came raises OutcomeUnknown (504) when it may have changed something, and
StorageUnavailable when it only reads.

Commands are encoded by ``resp`` (with the constant part of script calls cached) and written
to a pooled redis-py connection in one write; redis-py and hiredis read the replies.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from restmq import deadline
from restmq.engine import resp
from restmq.engine.scripts import READ_ONLY_SCRIPTS, Script, ScriptName
from restmq.errors import OutcomeUnknown, RestMQError, StorageError, StorageUnavailable

log = logging.getLogger("restmq.storage")
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
# Commands that change nothing: unanswered, they are a 503, not a 504.
READ_COMMANDS = frozenset(
    {"PING", "GET", "HGET", "HGETALL", "HLEN", "SMEMBERS", "SISMEMBER", "SCARD", "SSCAN",
     "SCAN", "ZRANGE", "ZRANGEBYSCORE", "ZCARD", "ZSCORE", "EXISTS", "INFO", "TIME"}
)


class _State(enum.Enum):
    QUEUED = 1
    SENT = 2
    ABANDONED = 3  # its caller gave up before it was sent: it never will be


@dataclass(eq=False, slots=True)
class _Call:
    command: bytes
    writes: bool
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    state: _State = _State.QUEUED


class Pipeliner:
    """Sends the commands of one event-loop turn in one pipeline (up to ``max_batch``)."""

    def __init__(
        self,
        redis: Redis,
        scripts: dict[ScriptName, Script],
        max_batch: int = 1000,
        timeout: float = BATCH_TIMEOUT,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._max_batch = max_batch
        self._timeout = timeout
        self._pending: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing = False  # logged once per change: a stalled Redis fails every batch

    async def call(self, *command: resp.Arg) -> Any:
        """Run one Redis command in the next pipeline and return its reply."""
        writes = str(command[0]).upper() not in READ_COMMANDS
        return await self._queue(_Call(resp.pack(command), writes))

    async def script(self, name: ScriptName, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a Lua script by SHA in the next pipeline and return its reply."""
        command = resp.pack_script(self._scripts[name].sha, keys, args)
        return await self._queue(_Call(command, name not in READ_ONLY_SCRIPTS))

    async def _queue(self, call: _Call) -> Any:
        self._pending.append(call)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= self._max_batch:
            self._flush()
        try:
            async with asyncio.timeout(deadline.remaining(self._timeout)):
                return await call.future
        except TimeoutError:
            raise _abandon(call) from None
        except asyncio.CancelledError:
            _abandon(call)  # its caller is gone: a command not sent yet never will be
            raise

    async def load_scripts(self) -> None:
        """Load every script into Redis (SCRIPT LOAD is idempotent), within the timeout."""
        calls = [
            _Call(resp.pack(("SCRIPT", "LOAD", script.source)), writes=False)
            for script in self._scripts.values()
        ]
        for reply in await self._execute(calls):
            if isinstance(reply, RestMQError):
                raise reply

    def _flush(self) -> None:
        """Send the pending batch, unless MAX_IN_FLIGHT batches are out: then it keeps
        growing and goes when one of them is answered."""
        self._pending = [call for call in self._pending if call.state is _State.QUEUED]
        while self._pending and len(self._tasks) < MAX_IN_FLIGHT:
            size = self._max_batch
            batch, self._pending = self._pending[:size], self._pending[size:]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._flush()

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._execute(batch)
            if any(_is_noscript(reply) for reply in replies):
                replies = await self._retry_noscript(batch, replies)
            self._log_state(None)
        except StorageUnavailable as exc:
            self._log_state(exc)
            replies = [_unanswered(call, exc) for call in batch]
        except BaseException as exc:  # cancelled or a bug: never leave a request hanging
            replies = [StorageError(f"storage error: {exc!r}")] * len(batch)
            if isinstance(exc, asyncio.CancelledError):
                _settle(batch, replies)
                raise
        _settle(batch, replies)

    def _log_state(self, failure: StorageUnavailable | None) -> None:
        if failure is not None and not self._failing:
            log.warning("%s; requests get 503/504 until it answers", failure.message)
        elif failure is None and self._failing:
            log.warning("storage answers again")
        self._failing = failure is not None

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        """Send the calls not abandoned by now, in one write; one reply per call (an
        abandoned call's reply is None)."""
        pool = self._redis.connection_pool
        connection: AbstractConnection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]
                await _reconnect_if_closed(connection)
                live = _take_live(calls)
                await connection.send_packed_command(
                    b"".join(call.command for call in live), check_health=False
                )
                replies = {id(call): _translate(await _reply(connection)) for call in live}
            return [replies.get(id(call)) for call in calls]
        except (*UNAVAILABLE, TimeoutError) as exc:
            if connection is not None:
                await connection.disconnect(nowait=True)
            raise StorageUnavailable(f"storage unavailable: {type(exc).__name__}") from None
        except BaseException:
            if connection is not None:
                await connection.disconnect(nowait=True)  # replies may be left unread
            raise
        finally:
            if connection is not None:
                await pool.release(connection)

    async def _retry_noscript(self, batch: list[_Call], replies: list[Any]) -> list[Any]:
        """Load the scripts and send again the calls answered NOSCRIPT (they did not run);
        the other calls keep their replies whatever happens to the retry."""
        retry = [i for i, reply in enumerate(replies) if _is_noscript(reply)]
        for i in retry:  # each did not run: send it again, unless its caller is gone
            if not batch[i].future.done():
                batch[i].state = _State.QUEUED
        try:
            await self.load_scripts()
            again = await self._execute([batch[i] for i in retry])
        except StorageUnavailable as exc:
            again = [_unanswered(batch[i], exc) for i in retry]
        for index, reply in zip(retry, again, strict=True):
            replies[index] = reply
        return replies


async def _reconnect_if_closed(connection: AbstractConnection) -> None:
    """A pooled connection that Redis already closed (it died or restarted) is opened again
    before anything is written on it: a write sent into a closed connection would have an
    unknown outcome (504) where the truth is that it never reached Redis (503)."""
    reader = getattr(connection, "_reader", None)  # redis-py keeps the stream reader private
    if reader is not None and reader.at_eof():
        await connection.disconnect()
        await connection.connect()  # type: ignore[no-untyped-call]


def _take_live(calls: list[_Call]) -> list[_Call]:
    """The calls to send now, marked sent (from here on their outcome may be unknown)."""
    live = [call for call in calls if call.state is _State.QUEUED]
    for call in live:
        call.state = _State.SENT
    return live


def _abandon(call: _Call) -> RestMQError:
    """The error for a call whose deadline passed: 503 unless it may have changed something."""
    if call.state is _State.QUEUED:
        call.state = _State.ABANDONED
        return StorageUnavailable("storage unavailable: no answer within the deadline")
    return _unanswered(call, StorageUnavailable("storage unavailable: no answer in time"))


def _unanswered(call: _Call, exc: StorageUnavailable) -> RestMQError:
    """The error for a call whose batch failed: a sent write's outcome is unknown."""
    if call.state is _State.SENT and call.writes:
        return OutcomeUnknown("outcome unknown: the storage did not answer a write")
    return exc


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


def _settle(batch: list[_Call], replies: list[Any]) -> None:
    for call, reply in zip(batch, replies, strict=True):
        if call.future.done():
            continue
        if isinstance(reply, BaseException):
            call.future.set_exception(reply)
        else:
            call.future.set_result(reply)
