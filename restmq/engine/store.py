"""The queue store: every storage operation of the broker, each one atomic.

Multi-key operations are Lua scripts (``lua/``) run through the automatic pipeliner; the
registry of queue names and the timers index are global keys, updated by separate idempotent
commands (SPEC §2). Nothing outside ``restmq.engine`` talks to Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from redis.crc import key_slot

from restmq import metrics
from restmq.engine.pipeline import Pipeliner
from restmq.engine.scripts import ScriptName
from restmq.errors import (
    BadRequest,
    IdempotencyConflict,
    InvalidKey,
    MessageGone,
    NotLeased,
    RestMQError,
    StaleReceipt,
)
from restmq.keys import (
    Keys,
    dead_letter_queue,
    hash_tag,
    is_dead_letter_queue,
    message_key,
    parse_message_key,
)
from restmq.types import Message, NackOutcome, Policy, QueueStats, Reserved, Status

_KEY_CACHE_SIZE = 4096
SCAN_COUNT = 5000  # registry names asked for per SSCAN when listing queues
IDLE_SCAN_COUNT = 250  # listed queues looked at per step of the idle scan
IDLE_SCAN_EVERY_MS = 500  # at most one idle scan step per this many ms, per daemon
DEFAULT_IDLE_MS = 3_600_000  # Settings.queue_idle_time's default, in ms
DEPTH_BATCH = 64  # queues (of one hash slot) read per depth.lua call at most
DEPTH_CALLS = 32  # depth.lua calls sent at once by a scan
# A queue's counts for a metrics scrape: name, waiting, leased, delayed, dead, consumers.
Depth = tuple[str, int, int, int, int, int]


class QueueStore:
    """Atomic queue operations on one Redis/Valkey, under one key namespace."""

    def __init__(
        self, pipeliner: Pipeliner, keys: Keys, idempotency_window: float = 300.0
    ) -> None:
        self._p = pipeliner
        self._keys = keys
        self._cache: dict[str, list[str]] = {}
        self._window_ms = _ms(idempotency_window)


    @property
    def keys(self) -> Keys:
        return self._keys

    def _queue_keys(self, queue: str) -> list[str]:
        """The queue's keys followed by its dead-letter queue's keys (cached)."""
        found = self._cache.get(queue)
        if found is None:
            if len(self._cache) >= _KEY_CACHE_SIZE:
                self._cache.clear()
            own = self._keys.queue(queue)
            dead_queue = queue if is_dead_letter_queue(queue) else dead_letter_queue(queue)
            dead = self._keys.queue(dead_queue)
            found = own + dead
            self._cache[queue] = found
        return found

    async def run(self, name: ScriptName, queue: str, *args: Any) -> Any:
        """Run a per-queue script; its first ARGV is always the queue's channel."""
        channel = self._keys.queue_channel(queue)
        return await self._p.script(name, self._queue_keys(queue), (channel, *args))

    async def add(
        self,
        queue: str,
        values: Sequence[str],
        *,
        ttl: float = 0,
        delay: float = 0,
        idempotency_key: str | None = None,
    ) -> list[str]:
        """Append messages to a queue; returns their keys in order. With an idempotency key
        seen within the window, adds nothing and returns the first request's keys (SPEC
        §3.8); the same key with another request is an IdempotencyConflict."""
        keys, fingerprint = self._queue_keys(queue), ""
        if idempotency_key is not None:
            keys = [*keys, self._keys.idempotency(queue, _digest(idempotency_key))]
            fingerprint = _fingerprint(ttl, delay, values)
        channel = self._keys.queue_channel(queue)
        args = (channel, _ms(ttl), _ms(delay), self._window_ms, fingerprint, *values)
        reply = await self._p.script(ScriptName.ADD, keys, args)
        if reply[0] == "seen":
            return _replayed(queue, reply[1], fingerprint)
        last, due, new = (int(part) for part in reply)
        if new:
            await self._p.call("SADD", self._keys.registry, queue)
        if due >= 0:
            await self.set_timer(queue, due)
        metrics.messages_in(queue, len(values))
        return [message_key(queue, n) for n in range(last - len(values) + 1, last + 1)]

    async def _register(self, queue: str, due: int = -1) -> None:
        await self._p.call("SADD", self._keys.registry, queue)
        if due >= 0:
            await self.set_timer(queue, due)

    async def set_timer(self, queue: str, due_ms: int) -> None:
        """Make the sweeper look at the queue at ``due_ms`` at the latest."""
        await self._p.call("ZADD", self._keys.timers, "LT", due_ms, queue)

    async def take(self, queue: str, count: int = 1) -> list[Message]:
        """Remove and return up to ``count`` oldest messages."""
        taken = _taken(queue, await self.run(ScriptName.TAKE, queue, count))
        metrics.messages_out(queue, "take", len(taken))
        return taken

    async def get(self, queue: str) -> Message | None:
        """Soft get: the oldest message stays; its get counter grows by one."""
        found = await self.run(ScriptName.GET, queue)
        if not found:
            return None
        msg_id, value, count = found
        return Message(queue, message_key(queue, msg_id), value, int(count))

    async def delete(self, queue: str, key: str) -> bool:
        """Delete one message by key wherever it is; False when it no longer exists."""
        return bool(await self.run(ScriptName.DELETE, queue, self._id(queue, key)))

    async def purge(self, queue: str) -> tuple[bool, int]:
        """Empty a queue whole but for its id counter (its keys keep counting, SPEC §3.2),
        and its dead-letter queue with it when that one is unused; returns (whether it
        existed, messages removed).

        The queue leaves the registry before the script runs: an add after the script finds
        its ``listed`` mark gone and lists the queue again. A dead-letter queue whose queue
        has max_deliveries is listed again at once: dead letters may arrive at any time.
        """
        registered = await self._p.call("SREM", self._keys.registry, queue)
        existed, count, dead_gone = await self.run(ScriptName.PURGE, queue)
        await self._p.call("ZREM", self._keys.timers, queue)
        if is_dead_letter_queue(queue):
            await self._relist(queue)
        elif int(dead_gone):
            await self._unlist(dead_letter_queue(queue))
        return bool(existed) or bool(registered), int(count)

    async def _run_with_parent(self, name: ScriptName, queue: str, *args: Any) -> Any:
        """Run idle.lua or relist.lua: the queue's keys, then the meta of the queue it is the
        dead-letter queue of (its own meta when it is not one; same hash tag)."""
        keys = [*self._queue_keys(queue), self._keys.queue_key(hash_tag(queue), "meta")]
        return await self._p.script(name, keys, (self._keys.queue_channel(queue), *args))

    async def _relist(self, queue: str) -> None:
        """List the queue again if it is in use (relist.lua)."""
        if await self._run_with_parent(ScriptName.RELIST, queue):
            await self._p.call("SADD", self._keys.registry, queue)

    async def _unlist(self, queue: str) -> None:
        """Drop a forgotten queue from the registry, then list it again if something came
        between the script that forgot it and the SREM (a message, a consumer, a setting)."""
        await self._p.call("SREM", self._keys.registry, queue)
        await self._relist(queue)

    async def length(self, queue: str) -> int:
        """The number of messages waiting (not leased, not delayed)."""
        return (await self.stats(queue)).len

    async def stats(self, queue: str) -> QueueStats:
        """The queue's counts, status and policy, read in one atomic step."""
        length, leased, delayed, status, policy, dead, _, consumers = await self.run(
            ScriptName.STATS, queue
        )
        return QueueStats(
            name=queue,
            len=int(length),
            status=_status(status),
            policy=_policy(policy),
            leased=int(leased),
            delayed=int(delayed),
            dead=0 if is_dead_letter_queue(queue) else int(dead),  # its "dead" keys are its own
            consumers=int(consumers),
        )

    async def peek(self, queue: str, count: int) -> list[Message]:
        """The newest ``count`` waiting messages, newest first, left in place."""
        return _messages(queue, await self.run(ScriptName.PEEK, queue, count))

    async def queues(self, after: str = "", limit: int | None = None) -> list[str]:
        """The names of the queues that sort after ``after`` (code point order), sorted; at
        most ``limit`` of them (every one when None).

        The registry is read a chunk at a time (``scan_queues``) and only the best
        candidates are kept, so no step handles every name at once.
        """
        keep: list[str] = []
        trim = None if limit is None else max(4 * limit, SCAN_COUNT)
        async for chunk in self.scan_queues():
            keep += [name for name in chunk if name > after]
            if trim is not None and len(keep) > trim:
                keep = sorted(set(keep))[:limit]
        names = sorted(set(keep))
        return names if limit is None else names[:limit]

    async def scan_depths(self) -> AsyncIterator[list[Depth]]:
        """The counts of every listed queue for a metrics scrape, some at a time, in no
        order; the event loop runs between batches. Read only, without a sweep (depth.lua).

        The names are gathered first (``scan_queues``) and ordered by Cluster hash slot: one
        call reads up to ``DEPTH_BATCH`` queues of one slot, so every call touches one slot
        and 100,000 queues take a few thousand calls rather than 100,000. (Few objects are
        kept meanwhile — one dict, one list — so the garbage collector's full passes stay
        short.)
        """
        slots: dict[str, int] = {}  # a dict: SSCAN may give a name twice
        async for names in self.scan_queues():
            for name in names:
                slots[name] = key_slot(f"{{{hash_tag(name)}}}".encode())
        ordered = sorted(slots, key=slots.__getitem__)
        start = 0
        while start < len(ordered):
            batches: list[list[str]] = []
            while start < len(ordered) and len(batches) < DEPTH_CALLS:
                end = _slot_run_end(ordered, slots, start)
                batches.append(ordered[start:end])
                start = end
            found = await asyncio.gather(*(self._depths(batch) for batch in batches))
            yield [depth for batch in found for depth in batch]
            await asyncio.sleep(0)

    async def _depths(self, queues: list[str]) -> list[Depth]:
        keys = [key for queue in queues for key in self._keys.depth_keys(queue)]
        flat = [int(n) for n in await self._p.script(ScriptName.DEPTH, keys, ())]
        return [
            (queue, flat[j], flat[j + 1], flat[j + 2], flat[j + 3], flat[j + 4])
            for queue, j in zip(queues, range(0, len(flat), 5), strict=True)
        ]

    async def scan_queues(self) -> AsyncIterator[list[str]]:
        """Every listed queue name, one SSCAN chunk at a time, in no order; the event loop
        runs between chunks. A name may come twice while the registry changes."""
        cursor = "0"
        while True:
            cursor, chunk = await self._p.call(
                "SSCAN", self._keys.registry, cursor, "COUNT", SCAN_COUNT
            )
            yield list(chunk)
            if str(cursor) == "0":
                return
            await asyncio.sleep(0)

    async def queue_count(self) -> int:
        """How many queues are listed."""
        return int(await self._p.call("SCARD", self._keys.registry))

    async def policy(self, queue: str) -> Policy:
        meta = self._keys.queue_key(queue, "meta")
        return _policy(await self._p.call("HGET", meta, "policy"))

    async def set_policy(self, queue: str, policy: Policy) -> None:
        await self._p.call("HSET", self._keys.queue_key(queue, "meta"), "policy", policy)
        await self._register(queue)

    async def status(self, queue: str) -> Status:
        meta = self._keys.queue_key(queue, "meta")
        return _status(await self._p.call("HGET", meta, "status"))

    async def set_status(self, queue: str, status: Status) -> None:
        await self._p.call("HSET", self._keys.queue_key(queue, "meta"), "status", status)
        await self._register(queue)
        if status == "started":
            await self.wake(queue)

    async def wake(self, queue: str) -> None:
        """Tell every daemon with streaming consumers of the queue to look for messages."""
        await self._p.call("PUBLISH", self._keys.queue_channel(queue), "w")

    async def sweep_due(
        self, now_ms: int, limit: int = 100, idle_ms: int = DEFAULT_IDLE_MS
    ) -> int:
        """Sweep the queues whose timers are due; returns how many were swept.

        At most every ``IDLE_SCAN_EVERY_MS`` it also runs one step of the idle scan
        (``scan_idle``), which is not counted: the sweeper loops while this returns > 0.
        """
        reply = await self._p.call(
            "ZRANGEBYSCORE", self._keys.timers, "-inf", now_ms, "WITHSCORES", "LIMIT", 0, limit
        )
        due = _score_pairs(reply)
        for queue, seen in due:
            await self._sweep_one(queue, seen)
        if now_ms >= self._idle_next_ms:
            self._idle_next_ms = now_ms + IDLE_SCAN_EVERY_MS
            await self.scan_idle(idle_ms)
        return len(due)

    # Where the idle scan is in the registry, and when its next step is due (sweep_due).
    _idle_cursor: str = "0"
    _idle_next_ms: int = 0

    async def scan_idle(self, idle_ms: int, count: int = IDLE_SCAN_COUNT) -> int:
        """One step of the idle scan: look at the next ``count`` or so listed queues (SSCAN,
        resumed where the last step stopped) and forget those that have been unused for
        ``idle_ms`` (idle.lua: no message, consumer, poller or setting). Returns how many
        were forgotten."""
        cursor, names = await self._p.call(
            "SSCAN", self._keys.registry, self._idle_cursor, "COUNT", count
        )
        self._idle_cursor = str(cursor)
        forgotten = await asyncio.gather(*(self._forget_if_idle(q, idle_ms) for q in names))
        return sum(forgotten)

    async def _forget_if_idle(self, queue: str, idle_ms: int) -> bool:
        if not await self._idle_check(queue, idle_ms):
            return False
        await self._unlist(queue)
        return True

    async def _idle_check(self, queue: str, idle_ms: int) -> bool:
        """Run idle.lua: True when the queue was idle long enough and was just forgotten
        (every key but its counter deleted); the caller then drops it from the registry."""
        return bool(await self._run_with_parent(ScriptName.IDLE, queue, idle_ms))

    async def _sweep_one(self, queue: str, seen: int) -> None:
        """Sweep one queue, then move its timer from ``seen`` to the queue's next due time.

        A lease, delay or TTL created after the sweep read the next due time sets its own
        timer with ZADD LT, which cannot raise the stale score ``seen``; the move would then
        overwrite it. So once the timer was moved, the next due time is read again and the
        timer lowered to it if needed.
        """
        _, next_due = await self.run(ScriptName.SWEEP, queue)
        timers = [self._keys.timers]
        if await self._p.script(ScriptName.TIMER_CAS, timers, [queue, seen, int(next_due)]):
            _, again = await self.run(ScriptName.SWEEP, queue)
            if int(again) >= 0:
                await self.set_timer(queue, int(again))

    async def reserve(self, queue: str, count: int, timeout: float) -> list[Reserved]:
        """Lease up to ``count`` oldest messages for ``timeout`` seconds."""
        receipts = [secrets.token_urlsafe(12) for _ in range(count)]
        deadline, *flat = await self.run(ScriptName.RESERVE, queue, _ms(timeout), *receipts)
        if flat:
            await self.set_timer(queue, int(deadline))
        return [
            Reserved(queue, message_key(queue, flat[i]), flat[i + 1], flat[i + 2],
                     int(flat[i + 3]), int(deadline))
            for i in range(0, len(flat), 4)
        ]

    async def ack(self, queue: str, key: str, receipt: str) -> None:
        """Delete a leased message; the receipt must hold its lease."""
        status = await self.run(ScriptName.ACK, queue, self._id(queue, key), receipt)
        _check_lease(int(status), queue, key)
        metrics.messages_out(queue, "ack")

    async def nack(self, queue: str, key: str, receipt: str, delay: float = 0) -> NackOutcome:
        """Give a leased message back now or after ``delay`` (or to the dead-letter queue)."""
        (outcome,) = await self.nack_many(queue, [(key, receipt, delay)])
        if isinstance(outcome, RestMQError):
            raise outcome
        return outcome

    async def unreserve(self, messages: Sequence[Reserved]) -> None:
        """Put back leased messages that never reached anyone, as if never reserved (each
        goes to the front, so the newest goes first and the oldest ends frontmost)."""
        for message in reversed(messages):
            msg_id = self._id(message.queue, message.key)
            await self.run(ScriptName.NACK, message.queue, msg_id, message.receipt, 0, 1)

    async def extend(self, queue: str, key: str, receipt: str, timeout: float) -> int:
        """Move a lease's deadline to now + ``timeout``; returns the new deadline (ms)."""
        msg_id = self._id(queue, key)
        status, deadline = await self.run(ScriptName.EXTEND, queue, msg_id, receipt, _ms(timeout))
        _check_lease(int(status), queue, key)
        await self.set_timer(queue, int(deadline))
        return int(deadline)

    async def put_back(self, queue: str, messages: Sequence[Message]) -> None:
        """Undo a take: return the messages ``take`` gave (oldest first) to the front of the
        queue exactly as they were: key, value, soft-get count, delivery count, TTL end. One
        whose TTL ended meanwhile has expired and is not put back."""
        args: list[str | int] = []
        for m in messages:
            args += [self._id(queue, m.key), m.value, m.count, m.expires_ms, m.deliveries]
        if not args:
            return
        _, earliest = await self.run(ScriptName.PUTBACK, queue, *args)
        if int(earliest) >= 0:
            await self.set_timer(queue, int(earliest))

    async def max_deliveries(self, queue: str) -> int:
        raw = await self._p.call("HGET", self._keys.queue_key(queue, "meta"), "max_deliveries")
        return int(raw or 0)

    async def set_max_deliveries(self, queue: str, count: int) -> None:
        """Set (0 clears) how many deliveries a message gets before it is dead-lettered.

        A dead-letter queue is terminal (a message that fails there stays there): it takes
        no max_deliveries, only 0 to clear one set before that rule.
        """
        if count and is_dead_letter_queue(queue):
            raise BadRequest("a dead-letter queue is terminal: it takes no max_deliveries")
        meta = self._keys.queue_key(queue, "meta")
        await self._p.call("HSET", meta, "max_deliveries", count)
        await self._register(queue)
        if count:
            await self._register(dead_letter_queue(queue))

    async def mark_poller(self, queue: str, daemon_id: str, deadline_ms: int | None) -> None:
        """Announce (or, with None, withdraw) a daemon's long-polling requests on a queue,
        so that adds publish wake-ups for it."""
        pollers = self._keys.queue_key(queue, "pollers")
        if deadline_ms is None:
            await self._p.call("HDEL", pollers, daemon_id)
        else:
            await self._p.call("HSET", pollers, daemon_id, deadline_ms)

    def _id(self, queue: str, key: str) -> int:
        msg_id = parse_message_key(queue, key)
        if msg_id is None:
            raise InvalidKey(queue, key)
        return msg_id

    async def ping(self) -> None:
        """Raise StorageUnavailable unless Redis answers."""
        await self._p.call("PING")

    async def ack_many(
        self, queue: str, leases: Sequence[tuple[str, str]]
    ) -> list[RestMQError | None]:
        """Acknowledge many (key, receipt) leases in one script call. Per entry, in order:
        None when acknowledged, else the error that refused it (InvalidKey, MessageGone,
        StaleReceipt, NotLeased); a refused entry changed nothing."""
        ids = [parse_message_key(queue, key) for key, _ in leases]
        args = [arg for msg_id, (_, receipt) in zip(ids, leases, strict=True)
                if msg_id is not None for arg in (msg_id, receipt)]
        statuses = await self.run(ScriptName.ACK_MANY, queue, *args) if args else []
        results = _settled(queue, [key for key, _ in leases], ids, statuses)
        acked = [None if isinstance(result, int) else result for result in results]
        metrics.messages_out(queue, "ack", acked.count(None))
        return acked

    async def nack_many(
        self, queue: str, leases: Sequence[tuple[str, str, float]]
    ) -> list[NackOutcome | RestMQError]:
        """Give many (key, receipt, delay) leases back in one script call. Per entry, in
        order: where it went ("requeued", "delayed", "dead"), else the error that refused it.
        The requeued messages go back to the front of the queue, oldest frontmost."""
        ids = [parse_message_key(queue, key) for key, _, _ in leases]
        args = [arg for msg_id, (_, receipt, delay) in zip(ids, leases, strict=True)
                if msg_id is not None for arg in (msg_id, receipt, _ms(delay))]
        due, *statuses = await self.run(ScriptName.NACK_MANY, queue, *args) if args else [-1]
        if int(due) >= 0:
            await self.set_timer(queue, int(due))
        results = _settled(queue, [key for key, _, _ in leases], ids, statuses)
        return [_NACK_OUTCOMES[r] if isinstance(r, int) else r for r in results]


_NACK_OUTCOMES: dict[int, NackOutcome] = {1: "requeued", 2: "delayed", 3: "dead"}


# The failure statuses of a lease settlement (leases.lua); any other status means done.
_LEASE_ERRORS: dict[int, Callable[[str, str], RestMQError]] = {
    0: MessageGone,
    -1: StaleReceipt,
    -2: NotLeased,
}


def _lease_error(status: int, queue: str, key: str) -> RestMQError | None:
    """The error of a lease settlement's status, or None when it was done."""
    make = _LEASE_ERRORS.get(status)
    return None if make is None else make(queue, key)


def _check_lease(status: int, queue: str, key: str) -> None:
    error = _lease_error(status, queue, key)
    if error is not None:
        raise error


def _settled(
    queue: str, keys: Sequence[str], ids: Sequence[int | None], statuses: Sequence[Any]
) -> list[int | RestMQError]:
    """Per entry of a batch settlement: its success status, or its error (an invalid key was
    never sent; the others have a status each, in order)."""
    found = iter(statuses)
    results: list[int | RestMQError] = []
    for key, msg_id in zip(keys, ids, strict=True):
        if msg_id is None:
            results.append(InvalidKey(queue, key))
            continue
        status = int(next(found))
        results.append(_lease_error(status, queue, key) or status)
    return results


def _slot_run_end(ordered: list[str], slots: dict[str, int], start: int) -> int:
    """Where the run of names of one hash slot that begins at ``start`` ends (at most
    ``DEPTH_BATCH`` long)."""
    slot, end = slots[ordered[start]], start + 1
    limit = min(len(ordered), start + DEPTH_BATCH)
    while end < limit and slots[ordered[end]] == slot:
        end += 1
    return end


def _score_pairs(reply: list[Any]) -> list[tuple[str, int]]:
    """A ``WITHSCORES`` reply as (member, integer score) pairs: RESP3 (redis-py 8's default)
    nests the pairs, RESP2 sends them flat."""
    if reply and isinstance(reply[0], list | tuple):
        return [(member, int(float(score))) for member, score in reply]
    return [
        (member, int(float(score)))
        for member, score in zip(reply[::2], reply[1::2], strict=True)
    ]


def _digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


def _fingerprint(ttl: float, delay: float, values: Sequence[str]) -> str:
    """What makes two produce requests the same request (their retry), as a short digest."""
    body = hashlib.sha256(json.dumps([ttl, delay], separators=(",", ":")).encode())
    for value in values:
        body.update(b"%d:" % len(value))
        body.update(value.encode("utf-8"))
    return body.hexdigest()[:32]


def _replayed(queue: str, stored: str, fingerprint: str) -> list[str]:
    """The keys a first request was answered, for its retry."""
    first_fingerprint, first, last = stored.split(" ")
    if first_fingerprint != fingerprint:
        raise IdempotencyConflict(queue)
    return [message_key(queue, n) for n in range(int(first), int(last) + 1)]


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _status(raw: str | None) -> Status:
    return "stopped" if raw == "stopped" else "started"


def _policy(raw: str | None) -> Policy:
    return "roundrobin" if raw == "roundrobin" else "broadcast"


def _taken(queue: str, flat: list[Any]) -> list[Message]:
    """take.lua's answer: five fields per message (see the script's header)."""
    return [
        Message(queue, message_key(queue, flat[i]), flat[i + 1], int(flat[i + 2]),
                int(float(flat[i + 3])), int(flat[i + 4]))
        for i in range(0, len(flat), 5)
    ]


def _messages(queue: str, flat: list[Any]) -> list[Message]:
    return [
        Message(queue, message_key(queue, flat[i]), flat[i + 1], int(flat[i + 2]))
        for i in range(0, len(flat), 3)
    ]
