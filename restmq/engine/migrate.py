"""Importing a RestMQ 1.x database into this broker's storage (``restmq migrate-v1``).

How this works
--------------
The 1.x database (its layout is in the SPEC's appendix and in ``V1Layout``) is only read,
never changed: the migration can be run again, and the old broker can keep running until
the switch. For each name in ``QUEUESET``:

1. the list ``<q>:queue`` is read whole (its oldest key at the right end) and its keys are
   parsed into ids; the ids at or below the queue's marker (``Keys.migrated_v1``) were looked
   at by an earlier run and are left out;
2. in batches, oldest first, each message's value, remaining TTL (PTTL) and soft-get counter
   are read in one pipeline; a listed id whose value is gone (it expired, or was deleted, in
   1.x) is counted and skipped, and so is a value that is not UTF-8 text;
3. each batch is written by ``lua/migrate_v1.lua`` in one atomic step that also moves the
   marker, so a crash between batches leaves no half-moved message and a re-run moves only
   what is left. A last call per queue raises the counter to the 1.x one and, on a queue's
   first migration, applies its 1.x policy and status. The queue joins the registry first,
   and the sweeper's timer is set after a batch with TTLs, as an add does.

1.x leaked the value of every message taken from a queue; only the ids still listed are
moved, so those leaked values stay behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from restmq.config import describe_url
from restmq.engine.pipeline import Pipeliner
from restmq.engine.scripts import ScriptName
from restmq.errors import InvalidQueueName, MigrationError
from restmq.keys import Keys, dead_letter_queue, is_dead_letter_queue, parse_message_key
from restmq.protocol.names import check_queue
from restmq.types import Policy, Status

BATCH = 1000  # messages read from 1.x in one pipeline
BATCH_BYTES = 8 * 1024 * 1024  # about the most value bytes (characters) per script call
V1_POLICIES: dict[bytes, Policy] = {b"1": "broadcast", b"2": "roundrobin"}
V1_STATUSES: dict[bytes, Status] = {b"1": "started", b"0": "stopped"}
Gone = Literal["expired", "not_text"]


class V1Layout:
    """The key names of a RestMQ 1.x database: unprefixed, read-only here (SPEC appendix)."""

    queues = "QUEUESET"

    @staticmethod
    def listing(queue: str) -> str:
        return f"{queue}:queue"

    @staticmethod
    def counter(queue: str) -> str:
        return f"{queue}:UUID"

    @staticmethod
    def message(queue: str, msg_id: int) -> str:
        return f"{queue}:{msg_id}"

    @staticmethod
    def refcount(queue: str, msg_id: int) -> str:
        return f"{queue}:{msg_id}:refcount"

    @staticmethod
    def status(queue: str) -> str:
        return f"queuestat::{queue}"

    @staticmethod
    def policy(queue: str) -> str:
        return f"{queue}:queuepolicy"


@dataclass(frozen=True, slots=True)
class V1Message:
    """A 1.x message as read: ``ttl_ms`` is the time it had left (0: no TTL)."""

    id: int
    value: str
    ttl_ms: int
    refs: int


@dataclass(frozen=True, slots=True)
class V1Queue:
    """A 1.x queue's listed ids (oldest first), counter and settings."""

    name: str
    ids: list[int]
    counter: int
    policy: Policy | None
    status: Status | None


@dataclass(slots=True)
class QueueReport:
    """What the migration did with one queue; ``policy`` and ``status`` are the 1.x ones,
    applied when ``first`` (the queue's first migration)."""

    queue: str
    first: bool = False
    moved: int = 0
    renumbered: int = 0
    already: int = 0  # moved (or looked at) by an earlier run
    expired: int = 0  # listed, but the value was gone (expired or deleted in 1.x)
    not_text: int = 0  # the value was not UTF-8 text
    with_ttl: int = 0
    policy: Policy | None = None
    status: Status | None = None


COUNTS = ("moved", "renumbered", "already", "expired", "not_text", "with_ttl")


@dataclass(slots=True)
class MigrationReport:
    """What ``migrate-v1`` moved, queue by queue, and the queues it could not move."""

    source: str
    queues: list[QueueReport] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # queue name -> why

    def totals(self) -> dict[str, int]:
        sums = {name: sum(getattr(q, name) for q in self.queues) for name in COUNTS}
        return {"queues": len(self.queues), "new_queues": sum(q.first for q in self.queues),
                **sums}

    def as_dict(self) -> dict[str, Any]:
        queues = [{f.name: getattr(q, f.name) for f in fields(q)} for q in self.queues]
        return {"source": self.source, "totals": self.totals(), "queues": queues,
                "skipped": self.skipped}


class V1Source:
    """Reads a 1.x database as it stored it (bytes); never writes to it."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def queue_names(self) -> list[bytes]:
        names: set[bytes] = await self._redis.smembers(V1Layout.queues)  # type: ignore[assignment]
        return sorted(names)

    async def queue(self, name: str) -> V1Queue:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(V1Layout.listing(name), 0, -1)
            pipe.get(V1Layout.counter(name))
            pipe.get(V1Layout.policy(name))
            pipe.get(V1Layout.status(name))
            keys, counter, policy, status = await pipe.execute()
        ids = [parse_message_key(name, key.decode("utf-8", "replace")) for key in keys]
        return V1Queue(
            name=name,
            ids=_unique([i for i in reversed(ids) if i is not None]),
            counter=int(counter or 0),
            policy=V1_POLICIES.get(policy or b""),
            status=V1_STATUSES.get(status or b""),
        )

    async def messages(self, queue: str, ids: Sequence[int]) -> list[V1Message | Gone]:
        """Each id's message, or why it cannot be moved."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for msg_id in ids:
                pipe.get(V1Layout.message(queue, msg_id))
                pipe.pttl(V1Layout.message(queue, msg_id))
                pipe.get(V1Layout.refcount(queue, msg_id))
            replies = await pipe.execute()
        return [v1_message(msg_id, *replies[3 * i : 3 * i + 3]) for i, msg_id in enumerate(ids)]


def _unique(ids: list[int]) -> list[int]:
    """The ids in order, each once (a key listed twice is one message)."""
    return list(dict.fromkeys(ids))


def v1_message(
    msg_id: int, raw: bytes | None, pttl: int, refs: bytes | None
) -> V1Message | Gone:
    """A 1.x message from its value, PTTL and refcount replies, or why it cannot move."""
    if raw is None or pttl == -2:
        return "expired"
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not_text"
    return V1Message(msg_id, value, max(0, int(pttl)), _int(refs))


def _int(raw: bytes | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0


def chunks(
    ids: Sequence[int], fetched: Sequence[V1Message | Gone], max_bytes: int
) -> list[tuple[int, list[V1Message]]]:
    """Split one batch into script calls of at most ``max_bytes`` of values (at least one
    message each): (the highest id looked at, the messages to write)."""
    out: list[tuple[int, list[V1Message]]] = []
    current: list[V1Message] = []
    upto, size = 0, 0
    for msg_id, item in zip(ids, fetched, strict=True):
        if isinstance(item, V1Message):
            if current and size + len(item.value) > max_bytes:
                out.append((upto, current))
                current, size = [], 0
            current.append(item)
            size += len(item.value)
        upto = max(upto, msg_id)
    out.append((upto, current))
    return out


class Migration:
    """One run of ``migrate-v1``: every 1.x queue into the target store's namespace."""

    def __init__(
        self, source: V1Source, pipeliner: Pipeliner, keys: Keys, batch: int = BATCH
    ) -> None:
        self._source = source
        self._p = pipeliner
        self._keys = keys
        self._batch = batch

    async def run(self, report: MigrationReport) -> MigrationReport:
        for raw in await self._source.queue_names():
            await self._try_queue(raw, report)
        return report

    async def _try_queue(self, raw: bytes, report: MigrationReport) -> None:
        """Move one queue, or write down in the report why it cannot move."""
        shown = raw.decode("utf-8", "replace")
        try:
            report.queues.append(await self._queue(check_queue(raw.decode("utf-8"))))
        except UnicodeDecodeError:
            report.skipped[shown] = "the name is not UTF-8 text"
        except InvalidQueueName as exc:
            report.skipped[shown] = exc.message
        except redis_errors.ResponseError as exc:
            report.skipped[shown] = f"not in the 1.x layout: {exc}"

    async def _queue(self, name: str) -> QueueReport:
        v1 = await self._source.queue(name)
        report = QueueReport(name, policy=v1.policy, status=v1.status)
        marker = int(await self._p.call("GET", self._keys.migrated_v1(name)) or 0)
        todo = [i for i in v1.ids if i > marker]
        report.already = len(v1.ids) - len(todo)
        await self._p.call("SADD", self._keys.registry, name)
        for start in range(0, len(todo), self._batch):
            await self._move(v1, todo[start : start + self._batch], report)
        await self._write(v1, 0, [], report, counter=v1.counter)
        return report

    async def _move(self, v1: V1Queue, ids: list[int], report: QueueReport) -> None:
        fetched = await self._source.messages(v1.name, ids)
        report.expired += fetched.count("expired")
        report.not_text += fetched.count("not_text")
        for upto, messages in chunks(ids, fetched, BATCH_BYTES):
            await self._write(v1, upto, messages, report)

    async def _write(
        self, v1: V1Queue, upto: int, messages: list[V1Message], report: QueueReport,
        counter: int = -1,
    ) -> None:
        args: list[Any] = [self._keys.queue_channel(v1.name), upto, counter,
                           v1.policy or "", v1.status or ""]
        for m in messages:
            args += [m.id, m.ttl_ms, m.refs, m.value]
        moved, renumbered, already, first, due = await self._p.script(
            ScriptName.MIGRATE_V1, self._script_keys(v1.name), args
        )
        report.moved += int(moved)
        report.renumbered += int(renumbered)
        report.already += int(already)
        report.first = report.first or bool(first)
        report.with_ttl += sum(1 for m in messages if m.ttl_ms > 0)
        if int(due) >= 0:
            await self._p.call("ZADD", self._keys.timers, "LT", int(due), v1.name)

    def _script_keys(self, queue: str) -> list[str]:
        """The queue's keys, its dead-letter queue's, then its marker (see common.lua)."""
        dead = queue if is_dead_letter_queue(queue) else dead_letter_queue(queue)
        return [*self._keys.queue(queue), *self._keys.queue(dead), self._keys.migrated_v1(queue)]


async def migrate_v1(
    source_url: str, pipeliner: Pipeliner, keys: Keys, batch: int = BATCH
) -> MigrationReport:
    """Move the 1.x database at ``source_url`` into the namespace of ``keys``; see the module
    docstring. Raises MigrationError when the 1.x database cannot be read."""
    shown = describe_url(source_url)
    redis = Redis.from_url(source_url, decode_responses=False, socket_timeout=30,
                           socket_connect_timeout=5)
    try:
        return await Migration(V1Source(redis), pipeliner, keys, batch).run(
            MigrationReport(shown)
        )
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        raise MigrationError(f"cannot read the 1.x database at {shown}: {exc}", shown) from None
    except redis_errors.ResponseError as exc:
        raise MigrationError(f"{shown} is not a RestMQ 1.x database: {exc}", shown) from None
    finally:
        await redis.aclose()
