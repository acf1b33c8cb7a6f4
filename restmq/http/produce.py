"""Producing: ``POST /`` and ``POST /q/<queue>`` (SPEC §3.1).

Both accept an ``Idempotency-Key`` header (or an ``idempotency_key`` field): a retry with the
same key within the dedup window is answered the first attempt's key(s) and adds nothing.
"""

from __future__ import annotations

from aiohttp import web

from restmq.errors import BadRequest
from restmq.http import commands
from restmq.http.context import ctx
from restmq.http.params import Params, read_params
from restmq.http.render import reply, reply_key
from restmq.protocol.idempotency import FIELD, HEADER, idempotency_key
from restmq.protocol.names import check_queue


def _value(params: Params, body_is_value: bool) -> str:
    """``msg`` wins over ``value``; on ``/q/<queue>`` a body without either is the value."""
    value = params.text("msg", "value")
    if value is None and body_is_value:
        value = params.raw
    if value is None:
        raise BadRequest("missing value")
    return value


async def _add(
    request: web.Request, queue: str, params: Params, body_is_value: bool = False
) -> web.Response:
    context = ctx(request)
    ttl, delay = params.seconds("ttl"), params.seconds("delay")
    once = idempotency_key(request.headers.get(HEADER), params.fields.get(FIELD))
    if "values" in params.fields:  # a batch: JSON {"values": [...]}
        if "value" in params.fields or "msg" in params.fields:
            raise BadRequest("send either 'values' (a batch) or 'value'/'msg', not both")
        values = commands.batch_values(context, params.fields["values"])
        keys = await context.store.add(
            queue, values, ttl=ttl, delay=delay, idempotency_key=once
        )
        return reply(request, {"queue": queue, "keys": keys})
    value = context.check_size(_value(params, body_is_value))
    (key,) = await context.store.add(queue, [value], ttl=ttl, delay=delay, idempotency_key=once)
    return reply_key(request, key)


async def post_root(request: web.Request) -> web.Response:
    """``POST /`` with ``queue`` and ``value``/``msg``."""
    params = await read_params(request)
    queue = params.text("queue")
    if queue is None:
        raise BadRequest("missing queue")
    return await _add(request, check_queue(queue), params)


async def post_queue(request: web.Request) -> web.Response:
    """``POST /q/<queue>`` with ``value``/``msg``, or the raw body as the value."""
    queue = check_queue(request.match_info["queue"])
    return await _add(request, queue, await read_params(request), body_is_value=True)
