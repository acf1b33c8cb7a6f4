"""``/queue``: the JSON protocol over HTTP (SPEC §3.3), and ``/j/<queue>``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from restmq.errors import BadRequest
from restmq.http import commands, pages
from restmq.http.context import ctx
from restmq.http.params import parse_json, read_params
from restmq.http.render import reply
from restmq.protocol.idempotency import HEADER as IDEMPOTENCY_HEADER
from restmq.protocol.names import check_queue

JOB_PAGE_MESSAGES = 10
COMMAND = web.RequestKey("restmq_command", dict[str, Any])


async def read_command(request: web.Request) -> commands.Command:
    """The command of a ``POST /queue``: the form field ``body`` (or ``msg``), else the raw
    body. Parsed once per request: the access check and the handler get the same object."""
    command = request.get(COMMAND)
    if command is None:
        command = request[COMMAND] = commands.parse(await _command_json(request))
    return command


async def _command_json(request: web.Request) -> Any:
    params = await read_params(request)
    text = params.text("body", "msg")
    if text is not None:
        return parse_json(text)
    if params.raw is None:
        raise BadRequest("missing command: send it as the form field 'body' or as a JSON body")
    return params.json_body if params.json_body is not None else parse_json(params.raw)


async def post_command(request: web.Request) -> web.Response:
    """Run the command of the request (``read_command``)."""
    command = await read_command(request)
    header = request.headers.get(IDEMPOTENCY_HEADER)
    return reply(request, await commands.execute(ctx(request), command, header))


async def get_help(request: web.Request) -> web.Response:
    return pages.protocol_help()


async def job_page(request: web.Request) -> web.Response:
    """``GET /j/<queue>``: the last 10 messages waiting and the queue's counts, as HTML."""
    queue = check_queue(request.match_info["queue"])
    store = ctx(request).store
    return pages.job_page(await store.stats(queue), await store.peek(queue, JOB_PAGE_MESSAGES))
