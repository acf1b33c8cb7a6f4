"""The aiohttp application: the one visible route table of the broker."""

from __future__ import annotations

from aiohttp import web

from restmq.engine.accesskeys import AccessKeyStore
from restmq.http import (
    admin,
    consume,
    dashboard,
    jsonproto,
    metrics,
    openapi,
    pages,
    produce,
    reliable,
    render,
    streams,
    xmlrpc,
)
from restmq.http.access import AccessControl
from restmq.http.collectd import collectd_routes
from restmq.http.context import CTX, Context
from restmq.http.errors import error_middleware

# A queue name is any text without "/" (aiohttp's default for "{queue}" also refuses "{" and "}").
QUEUE = "{queue:[^/]+}"

# HEAD is refused (405) where a GET takes or streams messages: it would consume one unseen.
ROUTES = [
    web.get("/", consume.get_root, allow_head=False),
    web.post("/", produce.post_root),
    web.get("/q", consume.list_queues),
    web.get("/q/", consume.list_queues),
    web.get(f"/q/{QUEUE}", consume.get_queue, allow_head=False),
    web.post(f"/q/{QUEUE}", produce.post_queue),
    web.delete(f"/q/{QUEUE}", consume.delete_queue),
    web.post(f"/q/{QUEUE}/reserve", reliable.reserve),
    web.post(f"/q/{QUEUE}/ack", reliable.ack),
    web.post(f"/q/{QUEUE}/nack", reliable.nack),
    web.post(f"/q/{QUEUE}/extend", reliable.extend),
    web.post("/xmlrpc", xmlrpc.handle),
    web.get("/queue", jsonproto.get_help),
    web.post("/queue", jsonproto.post_command),
    web.get(f"/j/{QUEUE}", jsonproto.job_page),
    web.get(f"/p/{QUEUE}", admin.get_policy),
    web.post(f"/p/{QUEUE}", admin.post_policy),
    web.get("/control", admin.list_control),
    web.get("/control/", admin.list_control),
    web.get(f"/control/{QUEUE}", admin.get_control),
    web.post(f"/control/{QUEUE}", admin.post_control),
    web.get("/stats", admin.all_stats),
    web.get("/stats/", admin.all_stats),
    web.get(f"/stats/{QUEUE}", admin.queue_stats),
    web.get(f"/c/{QUEUE}", streams.comet, allow_head=False),
    web.get(f"/sse/{QUEUE}", streams.sse, allow_head=False),
    web.get(f"/ws/{QUEUE}", streams.websocket, allow_head=False),
    web.get("/livez", admin.livez),
    web.get("/healthz", admin.healthz),
    web.get("/openapi.json", openapi.serve),
    web.get("/metrics", metrics.scrape),
    web.get("/events/stats", dashboard.stats_events),
    web.get("/static/{filename}", pages.static_file),
]


# Long-lived handlers: no request-wide deadline (each of their storage calls has its own).
STREAMS = frozenset({streams.comet, streams.sse, streams.websocket, dashboard.stats_events})


def build_app(context: Context) -> web.Application:
    """The application for one daemon process, with its shared context."""
    access = AccessControl.load(context.settings.acl, AccessKeyStore.beside(context.store))
    app = web.Application(
        middlewares=[
            metrics.middleware,
            error_middleware(context.settings.request_timeout, STREAMS),
        ],
        client_max_size=context.settings.max_body_size,
    )
    app[CTX] = context
    access.install(app)
    app.add_routes(ROUTES)
    app.on_response_prepare.append(render.nosniff)
    metrics.install(app)
    dashboard.install(app)
    if context.settings.collectd:
        app.add_routes(collectd_routes())
    return app
