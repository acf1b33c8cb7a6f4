"""Policy, control and stats routes (SPEC §3.5), and the health probes.

The listings ``GET /control/`` and ``GET /stats/`` are paged (``restmq.http.listing``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from restmq.errors import BadRequest, StorageUnavailable
from restmq.http import listing
from restmq.http.access import permits
from restmq.http.context import ctx
from restmq.http.params import read_params
from restmq.http.render import reply
from restmq.protocol import fields as checks
from restmq.protocol.names import check_queue
from restmq.types import POLICIES, Status, stats_json

MAX_DELIVERIES = 1_000_000
STATUS_WORDS: dict[str, Status] = {"start": "started", "stop": "stopped"}
STATUS_NUMBERS: dict[Status, int] = {"started": 1, "stopped": 0}


def _queue(request: web.Request) -> str:
    return check_queue(request.match_info["queue"])


async def get_policy(request: web.Request) -> web.Response:
    queue = _queue(request)
    await read_params(request)
    store = ctx(request).store
    answer: dict[str, Any] = {"queue": queue, "value": await store.policy(queue)}
    limit = await store.max_deliveries(queue)
    if limit:
        answer["max_deliveries"] = limit
    return reply(request, answer)


async def post_policy(request: web.Request) -> web.Response:
    """Set the policy and/or ``max_deliveries`` (0 clears it) of a queue; a dead-letter
    queue is terminal and takes no max_deliveries (400, nothing changed)."""
    queue = _queue(request)
    params = await read_params(request)
    policy, limit = params.text("policy"), params.fields.get("max_deliveries")
    if policy is None and limit is None:
        raise BadRequest("send policy=broadcast|roundrobin and/or max_deliveries=<n>")
    if policy is not None and policy not in POLICIES:
        raise BadRequest("policy must be 'broadcast' or 'roundrobin'")
    store = ctx(request).store
    answer: dict[str, Any] = {"queue": queue}
    if limit is not None:
        answer["max_deliveries"] = checks.whole(limit, "max_deliveries", MAX_DELIVERIES)
        await store.set_max_deliveries(queue, answer["max_deliveries"])
    if policy is not None:
        await store.set_policy(queue, policy)
    answer["value"] = await store.policy(queue)
    return reply(request, answer)


async def get_control(request: web.Request) -> web.Response:
    queue = _queue(request)
    await read_params(request)
    context = ctx(request)
    status = STATUS_NUMBERS[await context.store.status(queue)]
    return reply(
        request,
        {"redis": context.storage, "queue": queue, "status": {"queue": queue, "status": status}},
    )


async def post_control(request: web.Request) -> web.Response:
    queue = _queue(request)
    word = (await read_params(request)).text("status")
    status = STATUS_WORDS.get(word or "")
    if status is None:
        raise BadRequest("status must be 'start' or 'stop'")
    await ctx(request).store.set_status(queue, status)
    return reply(request, {"stat": {"queue": queue, "status": STATUS_NUMBERS[status]}})


async def list_control(request: web.Request) -> web.Response:
    """``GET /control/``: a page of queues with their status, in 1.x's shape."""
    wanted = listing.page_request(await read_params(request))
    context = ctx(request)
    page = await listing.read_page(context.store, wanted)
    found = await listing.read_each(page.names, context.store.status)
    queues = {
        queue: {"queue": queue, "status": STATUS_NUMBERS[status]}
        for queue, status in zip(page.names, found, strict=True)
    }
    return reply(request, {"redis": context.storage, "queues": queues, **page.fields()})


async def all_stats(request: web.Request) -> web.Response:
    """``GET /stats/``: a page of queues with their stats; ``count`` is the total."""
    wanted = listing.page_request(await read_params(request))
    context = ctx(request)
    page = await listing.read_page(context.store, wanted)
    found = await listing.read_each(page.names, context.store.stats)
    queues = {stats.name: stats_json(stats) for stats in found}
    return reply(request, {"queues": queues, "redis": context.storage, **page.fields()})


async def queue_stats(request: web.Request) -> web.Response:
    queue = _queue(request)
    await read_params(request)
    context = ctx(request)
    body: dict[str, Any] = {"redis": context.storage, "queue": queue}
    body.update(stats_json(await context.store.stats(queue)))
    return reply(request, body)


async def livez(request: web.Request) -> web.Response:
    """The process answers; Redis is not touched (the benchmark's baseline)."""
    return reply(request, {"status": "ok"})


async def healthz(request: web.Request) -> web.Response:
    """The process answers and Redis answers a PING (503 otherwise). The storage address is
    shown only to a client the ACL lets see ``/stats``, which shows it too."""

    context = ctx(request)
    await context.store.ping()
    if not context.hub.subscriber.connected:
        raise StorageUnavailable("the pub/sub link is down")
    body = {"status": "ok"}
    if await permits(request, "GET", "/stats"):
        body["redis"] = context.storage
    body["pubsub"] = "up"
    return reply(request, body)
