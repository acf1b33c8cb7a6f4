"""Consuming one message, listing and purging queues (SPEC §3.2)."""

from __future__ import annotations

from aiohttp import web

from restmq.errors import EmptyQueue
from restmq.http import listing, pages, shapes
from restmq.http.context import ctx
from restmq.http.params import read_params
from restmq.http.render import no_content, reply
from restmq.protocol import fields as checks
from restmq.protocol.names import check_queue
from restmq.types import Message

DASHBOARD = "/static/index.html"


def _shape(message: Message) -> dict[str, object]:
    return shapes.taken(message)


async def _take_one(request: web.Request, queue: str) -> Message | None:
    taken = await ctx(request).store.take(queue)
    return taken[0] if taken else None


async def get_queue(request: web.Request) -> web.Response:
    """``GET /q/<queue>``: take the oldest message; 204 with no body when there is none.

    ``count=N`` takes up to N (answered as ``{"queue", "messages": [...]}``); ``wait=S``
    holds the request up to S seconds for a message (long polling).
    """
    queue = check_queue(request.match_info["queue"])
    params = await read_params(request)
    count = params.count()
    wait = params.seconds("wait", maximum=checks.MAX_WAIT)
    found = await ctx(request).hub.take(queue, count, wait)
    if not found:
        return no_content()
    if "count" in params.fields:
        return reply(request, shapes.many(queue, [shapes.taken(m) for m in found]))
    return reply(request, _shape(found[0]))


async def get_root(request: web.Request) -> web.Response:
    """``GET /?queue=<q>`` takes like ``/q/<q>`` but answers 404 when empty; else redirect."""
    params = await read_params(request)
    queue = params.text("queue")
    if queue is None:
        raise web.HTTPFound(DASHBOARD)
    message = await _take_one(request, check_queue(queue))
    if message is None:
        raise EmptyQueue(queue)
    return reply(request, _shape(message))


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or "callback" in request.query


async def list_queues(request: web.Request) -> web.Response:
    """``GET /q/``: a page of queue names (``restmq.http.listing``), as JSON for programs
    (``{"queues": [...], "count": N}``, plus ``next`` when more follow) and HTML for
    browsers."""
    wanted = listing.page_request(await read_params(request))
    page = await listing.read_page(ctx(request).store, wanted)
    if _wants_json(request):
        return reply(request, {"queues": page.names, **page.fields()})
    return pages.queue_list(page, wanted)


async def delete_queue(request: web.Request) -> web.Response:
    """``DELETE /q/<queue>``: purge every message, lease and counter of the queue."""
    queue = check_queue(request.match_info["queue"])
    await read_params(request)
    existed, purged = await ctx(request).store.purge(queue)
    return reply(request, {"queue": queue, "status": int(existed), "purged": purged})
