"""The JSON protocol (SPEC §3.3): one handler per command, chosen from a table.

Shared by ``POST /queue`` and the WebSocket route. Command errors (a missing field, a wrong
type, an empty queue) answer ``{"error": ...}`` with status 200, as the original did, so old
clients keep working; only malformed JSON or a missing ``cmd`` is a 400 (raised by ``parse``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from restmq.errors import BadRequest
from restmq.http.context import Context
from restmq.protocol.names import check_queue

Command = dict[str, Any]
Handler = Callable[[Context, Command], Awaitable[dict[str, Any]]]


def parse(obj: Any) -> Command:
    """Check that a decoded JSON value is a command object with a string ``cmd``."""
    if not isinstance(obj, dict):
        raise BadRequest("the command must be a JSON object")
    if not isinstance(obj.get("cmd"), str):
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
    value = command.get(name, 0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadRequest(f"'{name}' must be a non-negative number of seconds")
    return float(value)


async def _add(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    value = ctx.check_size(_text(command, "value", allow_empty=True))
    ttl, delay = _seconds(command, "ttl"), _seconds(command, "delay")
    (key,) = await ctx.store.add(queue, [value], ttl=ttl, delay=delay)
    return {"queue": queue, "value": value, "key": key}


async def _get(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    message = await ctx.store.get(queue)
    if message is None:
        return {"error": "empty queue"}
    return {"queue": queue, "value": message.value, "key": message.key, "count": message.count}


async def _take(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    taken = await ctx.store.take(queue)
    if not taken:
        return {"error": "empty queue"}
    return {"queue": queue, "value": taken[0].value, "key": taken[0].key}


async def _delete(ctx: Context, command: Command) -> dict[str, Any]:
    queue = _queue(command)
    key = _text(command, "key")
    deleted = await ctx.store.delete(queue, key)
    return {"queue": queue, "deleted": deleted, "key": key}


HANDLERS: dict[str, Handler] = {
    "add": _add,
    "get": _get,
    "take": _take,
    "del": _delete,
}


async def execute(ctx: Context, command: Command) -> dict[str, Any]:
    """Run one parsed command; command errors become ``{"error": ...}`` answers."""
    handler = HANDLERS.get(command["cmd"])
    if handler is None:
        return {"error": "null resultset"}
    try:
        return await handler(ctx, command)
    except BadRequest as exc:  # a command error, not a request error: 200, as in 1.x
        return {"error": exc.message}
