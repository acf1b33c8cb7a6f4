"""Leases over REST (SPEC §4): ``POST /q/<queue>/reserve``, ``/ack``, ``/nack``, ``/extend``.

The same commands exist in the JSON protocol; here errors are HTTP statuses: 204 when nothing
could be reserved, 404 for a message that no longer exists, 409 for a wrong or expired receipt
or a message that is not leased. ``ack`` and ``nack`` also take a JSON batch
``{"messages": [{"key", "receipt"}, ...]}``, answered 200 with the outcome of each entry.
"""

from __future__ import annotations

from aiohttp import web

from restmq.errors import BadRequest
from restmq.http import commands, shapes
from restmq.http.context import ctx
from restmq.http.params import Params, read_params
from restmq.http.render import no_content, reply
from restmq.protocol import fields as checks
from restmq.protocol.names import check_queue


async def _request(request: web.Request) -> tuple[str, Params]:
    return check_queue(request.match_info["queue"]), await read_params(request)


def _timeout(params: Params) -> float:
    return checks.positive_seconds(
        params.fields.get("timeout"), "timeout", checks.DEFAULT_VISIBILITY, checks.MAX_VISIBILITY
    )


def _lease(params: Params) -> tuple[str, str]:
    key, receipt = params.text("key"), params.text("receipt")
    if key is None or receipt is None:
        raise BadRequest("send the message's key and the receipt of its lease")
    return key, receipt


async def reserve(request: web.Request) -> web.Response:
    """Lease up to ``count`` messages for ``timeout`` seconds, waiting up to ``wait``."""
    queue, params = await _request(request)
    count = params.count()
    wait = params.seconds("wait", maximum=checks.MAX_WAIT)
    found = await ctx(request).hub.reserve(queue, count, _timeout(params), wait)
    if not found:
        return no_content()
    if "count" in params.fields:
        return reply(request, shapes.many(queue, [shapes.reserved(m) for m in found]))
    return reply(request, shapes.reserved(found[0]))


async def ack(request: web.Request) -> web.Response:
    """Acknowledge a lease, or with ``messages`` a batch of them (answered per entry)."""
    queue, params = await _request(request)
    if "messages" in params.fields:
        answer = await commands.ack_batch(ctx(request), queue, params.fields["messages"])
        return reply(request, answer)
    key, receipt = _lease(params)
    await ctx(request).store.ack(queue, key, receipt)
    return reply(request, {"queue": queue, "key": key, "acked": True})


async def nack(request: web.Request) -> web.Response:
    """Give a lease back, or with ``messages`` a batch of them (``delay``: their default)."""
    queue, params = await _request(request)
    delay = params.seconds("delay")
    if "messages" in params.fields:
        messages = params.fields["messages"]
        return reply(request, await commands.nack_batch(ctx(request), queue, messages, delay))
    key, receipt = _lease(params)
    outcome = await ctx(request).store.nack(queue, key, receipt, delay)
    return reply(request, {"queue": queue, "key": key, "outcome": outcome})


async def extend(request: web.Request) -> web.Response:
    queue, params = await _request(request)
    key, receipt = _lease(params)
    timeout = _timeout(params)
    await ctx(request).store.extend(queue, key, receipt, timeout)
    return reply(request, {"queue": queue, "key": key, "timeout": timeout})
