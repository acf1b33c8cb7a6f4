"""XML-RPC at ``/xmlrpc`` (SPEC §3.6, §4): ``get``, ``set`` (the original's two), ``add``,
``take``, ``len``, ``queues``, ``reserve``, ``ack``.

Requests are parsed by ``restmq.protocol.xmlrpc`` (strictly, and once per request: the access
check reads the same call) and answers built with the standard library's ``xmlrpc.client``.
A body that is not a well-formed XML-RPC method call is a 400 with a JSON error, like any other
bad input; a well-formed call that cannot be run (no such method, wrong arguments, bad
values, an empty queue) is an XML-RPC fault with a clear message.

``add`` and ``set`` honour the request's ``Idempotency-Key`` header (SPEC §3.8). A string in an
answer that holds characters XML 1.0 cannot carry (most C0 controls) is sent as ``<base64>`` of
its UTF-8 bytes, so the answer is always well-formed XML and no message is lost to a client's
parser.
"""

from __future__ import annotations

import functools
import inspect
import re
import xmlrpc.client
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from restmq.errors import BadRequest, IdempotencyConflict, MessageGone, StaleReceipt
from restmq.http import shapes
from restmq.http.context import Context, ctx
from restmq.http.params import read_body
from restmq.protocol import fields as checks
from restmq.protocol.idempotency import HEADER, check_idempotency_key
from restmq.protocol.names import check_queue
from restmq.protocol.xmlrpc import Call, parse_call

Method = Callable[..., Awaitable[Any]]
FAULT_EMPTY, FAULT_BAD_INPUT, FAULT_GONE, FAULT_STALE, FAULT_NO_METHOD = 1, 2, 3, 4, -32601
FAULTS: dict[type[Exception], int] = {
    BadRequest: FAULT_BAD_INPUT,
    IdempotencyConflict: FAULT_BAD_INPUT,
    MessageGone: FAULT_GONE,
    StaleReceipt: FAULT_STALE,
}


class _Empty(Exception):
    """The queue had no message."""


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


async def _take(context: Context, queue: str) -> dict[str, Any]:
    found = await context.store.take(check_queue(_text(queue, "queue")))
    if not found:
        raise _Empty
    return shapes.taken(found[0])


async def _add(
    context: Context, queue: str, value: str, ttl: float = 0, *, once: str | None = None
) -> str:
    queue = check_queue(_text(queue, "queue"))
    value = context.check_size(_text(value, "value"))
    ttl = checks.seconds(ttl, "ttl")
    (key,) = await context.store.add(queue, [value], ttl=ttl, idempotency_key=once)
    return key


async def _len(context: Context, queue: str) -> int:
    return await context.store.length(check_queue(_text(queue, "queue")))


async def _queues(context: Context) -> list[str]:
    return await context.store.queues()


async def _reserve(
    context: Context, queue: str, timeout: float = checks.DEFAULT_VISIBILITY
) -> dict[str, Any]:
    seconds = checks.positive_seconds(
        timeout, "timeout", checks.DEFAULT_VISIBILITY, checks.MAX_VISIBILITY
    )
    found = await context.store.reserve(check_queue(_text(queue, "queue")), 1, seconds)
    if not found:
        raise _Empty
    return shapes.reserved(found[0])


async def _ack(context: Context, queue: str, key: str, receipt: str) -> bool:
    queue = check_queue(_text(queue, "queue"))
    await context.store.ack(queue, _text(key, "key"), _text(receipt, "receipt"))
    return True


METHODS: dict[str, Method] = {
    "get": _take,
    "set": _add,
    "add": _add,
    "take": _take,
    "len": _len,
    "queues": _queues,
    "reserve": _reserve,
    "ack": _ack,
}


def _fault_code(exc: Exception) -> int:
    return next(code for kind, code in FAULTS.items() if isinstance(exc, kind))


def _response(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/xml", charset="utf-8")


def _fault(code: int, message: str) -> web.Response:
    return _response(xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), allow_none=True))


PRODUCING = frozenset({"set", "add"})
# XML 1.0's Char production: every code point but these may appear in a document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _carriable(value: Any) -> Any:
    """``value`` with every string XML cannot carry turned into base64 of its UTF-8."""
    if isinstance(value, str) and _NOT_XML.search(value):
        return xmlrpc.client.Binary(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, dict):
        return {name: _carriable(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_carriable(item) for item in value]
    return value


async def _call(
    context: Context, name: str, params: tuple[Any, ...], once: str | None = None
) -> web.Response:
    method = METHODS.get(name)
    if method is None:
        return _fault(FAULT_NO_METHOD, f"no such method: {name}")
    if name in PRODUCING:
        method = functools.partial(method, once=once)
    try:
        inspect.signature(method).bind(context, *params)
    except TypeError:
        return _fault(FAULT_BAD_INPUT, f"wrong number of arguments for {name}")
    try:
        result = await method(context, *params)
    except _Empty:
        return _fault(FAULT_EMPTY, "empty queue")
    except (BadRequest, IdempotencyConflict, MessageGone, StaleReceipt) as exc:
        return _fault(_fault_code(exc), exc.message)
    answer = (_carriable(result),)
    return _response(xmlrpc.client.dumps(answer, methodresponse=True, allow_none=True))


CALL = web.RequestKey("restmq_xmlrpc_call", Call)


async def read_call(request: web.Request) -> Call:
    """The method call in the request's body, parsed once per request (400 when malformed)."""
    call = request.get(CALL)
    if call is None:
        call = request[CALL] = parse_call(await read_body(request))
    return call


async def handle(request: web.Request) -> web.Response:
    """``POST /xmlrpc``: one XML-RPC method call."""
    call = await read_call(request)
    once = check_idempotency_key(request.headers.get(HEADER))
    return await _call(ctx(request), call.method, call.params, once)
