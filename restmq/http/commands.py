"""The JSON protocol (SPEC §3.3, §4): one handler per command, chosen from a table.

Shared by ``POST /queue``, the WebSocket route and XML-RPC. Command errors (a missing field, a
wrong type, an empty queue, a stale receipt) answer ``{"error": ...}`` with status 200, as the
original did, so old clients keep working; only malformed JSON or a missing ``cmd`` is a 400
(raised by ``parse``). Asking for ``count`` answers a batch: ``{"queue", "messages": [...]}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from restmq.errors import (
    BadRequest,
    IdempotencyConflict,
    MessageGone,
    RestMQError,
    StaleReceipt,
)
from restmq.http import shapes
from restmq.http.context import Context
from restmq.protocol import fields as checks
from restmq.protocol.idempotency import FIELD as IDEMPOTENCY_FIELD
from restmq.protocol.idempotency import check_idempotency_key, idempotency_key
from restmq.protocol.names import check_queue

Command = dict[str, Any]
Handler = Callable[[Context, Command], Awaitable[dict[str, Any]]]
EMPTY = {"error": "empty queue"}
COMMAND_ERRORS = (BadRequest, IdempotencyConflict, MessageGone, StaleReceipt)
MAX_BATCH = 10_000
MAX_SETTLE = 1000  # leases per batch ack or nack


def parse(obj: Any) -> Command:
    """Check that a decoded JSON value is a command object with a non-empty string ``cmd``."""
    if not isinstance(obj, dict):
        raise BadRequest("the command must be a JSON object")
    if not isinstance(obj.get("cmd"), str) or not obj["cmd"]:
        raise BadRequest("the command has no 'cmd' field")
    return obj


def _text(command: Command, name: str, *, allow_empty: bool = False) -> str:
    value = command.get(name)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise BadRequest(f"'{name}' must be a non-empty string")
    return value


def _queue(command: Command) -> str:
    return check_queue(_text(command, "queue"))


def _seconds(command: Command, name: str) -> float:
    return checks.seconds(command.get(name), name)


def _values(ctx: Context, command: Command) -> list[str]:
    return batch_values(ctx, command.get("values"))


def batch_values(ctx: Context, values: Any) -> list[str]:
    """Check a batch of values: a JSON list of 1 to MAX_BATCH strings, each within size."""
    if not isinstance(values, list) or not values or len(values) > MAX_BATCH:
        raise BadRequest(f"'values' must be a list of 1 to {MAX_BATCH} strings")
    if not all(isinstance(value, str) for value in values):
        raise BadRequest("'values' must be a list of strings")
    return [ctx.check_size(value) for value in values]


async def _add(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    ttl, delay = _seconds(command, "ttl"), _seconds(command, "delay")
    once = check_idempotency_key(command.get(IDEMPOTENCY_FIELD))
    if "values" in command and "value" in command:
        raise BadRequest("send either 'values' (a batch) or 'value', not both")
    if "values" in command:
        values = _values(ctx, command)
        keys = await ctx.store.add(queue, values, ttl=ttl, delay=delay, idempotency_key=once)
        return {"queue": queue, "keys": keys}
    value = ctx.check_size(_text(command, "value", allow_empty=True))
    (key,) = await ctx.store.add(queue, [value], ttl=ttl, delay=delay, idempotency_key=once)
    return {"queue": queue, "value": value, "key": key}


async def _get(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    message = await ctx.store.get(queue)
    if message is None:
        return EMPTY
    return {"queue": queue, "value": message.value, "key": message.key, "count": message.count}


async def _take(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    count = checks.count(command.get("count"))
    wait = checks.seconds(command.get("wait"), "wait", maximum=checks.MAX_WAIT)
    found = await ctx.hub.take(queue, count, wait)
    if "count" in command:
        return shapes.many(queue, [shapes.taken(m) for m in found])
    if not found:
        return EMPTY
    return {"queue": queue, "value": found[0].value, "key": found[0].key}


async def _reserve(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    count = checks.count(command.get("count"))
    timeout = checks.positive_seconds(
        command.get("timeout"), "timeout", checks.DEFAULT_VISIBILITY, checks.MAX_VISIBILITY
    )
    wait = checks.seconds(command.get("wait"), "wait", maximum=checks.MAX_WAIT)
    found = await ctx.hub.reserve(queue, count, timeout, wait)
    if "count" in command:
        return shapes.many(queue, [shapes.reserved(m) for m in found])
    return shapes.reserved(found[0]) if found else EMPTY


async def _delete(ctx: Context, command: Command) -> dict[str, Any]:
    if command.get("receipt") is not None:
        return await _ack(ctx, command)
    queue = _queue(command)
    key = _text(command, "key")
    deleted = await ctx.store.delete(queue, key)
    return {"queue": queue, "deleted": deleted, "key": key}


async def _ack(ctx: Context, command: Command) -> dict[str, Any]:
    if "messages" in command:
        return await ack_batch(ctx, _queue(command), command["messages"])
    queue, key, receipt = _queue(command), _text(command, "key"), _text(command, "receipt")
    await ctx.store.ack(queue, key, receipt)
    return {"queue": queue, "key": key, "acked": True}


async def _nack(ctx: Context, command: Command) -> dict[str, Any]:
    delay = _seconds(command, "delay")
    if "messages" in command:
        return await nack_batch(ctx, _queue(command), command["messages"], delay)
    queue, key, receipt = _queue(command), _text(command, "key"), _text(command, "receipt")
    outcome = await ctx.store.nack(queue, key, receipt, delay)
    return {"queue": queue, "key": key, "outcome": outcome}


# Batch ack and nack (SPEC §4): {"messages": [{"key", "receipt"[, "delay"]}, ...]}, answered
# per entry. A malformed entry refuses the whole batch (nothing is done); a lease that cannot
# be settled (gone, wrong receipt, never leased, a key of another queue) fails alone.


def _lease_entry(entry: Any, index: int, delay: float | None) -> tuple[str, str, float]:
    where = f"messages[{index}]"
    if not isinstance(entry, dict):
        raise BadRequest(f"{where} must be an object with 'key' and 'receipt'")
    key, receipt = entry.get("key"), entry.get("receipt")
    if not isinstance(key, str) or not isinstance(receipt, str) or not receipt:
        raise BadRequest(f"{where} must have a string 'key' and a non-empty string 'receipt'")
    if delay is None:
        return key, receipt, 0
    return key, receipt, checks.seconds(entry.get("delay"), f"{where}.delay", default=delay)


def lease_batch(messages: Any, delay: float | None = None) -> list[tuple[str, str, float]]:
    """Check a batch of leases: 1 to MAX_SETTLE objects with a key and a receipt; as (key,
    receipt, delay). With a ``delay`` (a nack's default), an entry's own ``delay`` is read."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_SETTLE:
        raise BadRequest(f"'messages' must be a list of 1 to {MAX_SETTLE} leases")
    return [_lease_entry(entry, i, delay) for i, entry in enumerate(messages)]


def _failed(key: str, error: RestMQError) -> dict[str, str]:
    return {"key": key, "error": error.message}


async def ack_batch(ctx: Context, queue: str, messages: Any) -> dict[str, Any]:
    """Acknowledge a batch of leases: ``{"queue", "acked": [keys], "failed": [...]}``."""
    leases = [(key, receipt) for key, receipt, _ in lease_batch(messages)]
    results = zip(leases, await ctx.store.ack_many(queue, leases), strict=True)
    acked, failed = [], []
    for (key, _), error in results:
        if error is None:
            acked.append(key)
        else:
            failed.append(_failed(key, error))
    return {"queue": queue, "acked": acked, "failed": failed}


async def nack_batch(
    ctx: Context, queue: str, messages: Any, default_delay: float = 0
) -> dict[str, Any]:
    """Give a batch of leases back: ``{"queue", "nacked": [{"key", "outcome"}], "failed"}``."""
    leases = lease_batch(messages, default_delay)
    results = zip(leases, await ctx.store.nack_many(queue, leases), strict=True)
    nacked, failed = [], []
    for (key, _, _), outcome in results:
        if isinstance(outcome, RestMQError):
            failed.append(_failed(key, outcome))
        else:
            nacked.append({"key": key, "outcome": outcome})
    return {"queue": queue, "nacked": nacked, "failed": failed}


async def _extend(ctx: Context, command: Command) -> dict[str, Any]:
    queue, key, receipt = _queue(command), _text(command, "key"), _text(command, "receipt")
    timeout = checks.positive_seconds(
        command.get("timeout"), "timeout", checks.DEFAULT_VISIBILITY, checks.MAX_VISIBILITY
    )
    await ctx.store.extend(queue, key, receipt, timeout)
    return {"queue": queue, "key": key, "timeout": timeout}


HANDLERS: dict[str, Handler] = {
    "add": _add,
    "get": _get,
    "take": _take,
    "del": _delete,
    "reserve": _reserve,
    "ack": _ack,
    "nack": _nack,
    "extend": _extend,
}


async def execute(
    ctx: Context, command: Command, idempotency_header: str | None = None
) -> dict[str, Any]:
    """Run one parsed command; command errors become ``{"error": ...}`` answers. The
    request's ``Idempotency-Key`` header, if any, applies to an ``add`` without its own
    ``idempotency_key`` field."""
    handler = HANDLERS.get(command["cmd"])
    if handler is None:
        return {"error": "null resultset"}
    try:
        if idempotency_header is not None:
            key = idempotency_key(idempotency_header, command.get(IDEMPOTENCY_FIELD))
            command = {**command, IDEMPOTENCY_FIELD: key}
        return await handler(ctx, command)
    except COMMAND_ERRORS as exc:  # a command error, not a request error: 200, as in 1.x
        return {"error": exc.message}
