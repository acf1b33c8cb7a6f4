"""The aiohttp application: the one visible route table of the broker."""

from __future__ import annotations

from aiohttp import web

from restmq.http import admin, consume, jsonproto, produce, reliable, streams, xmlrpc
from restmq.http.collectd import collectd_routes
from restmq.http.context import CTX, Context
from restmq.http.errors import error_middleware

ROUTES = [
    web.get("/", consume.get_root),
    web.post("/", produce.post_root),
    web.get("/q", consume.list_queues),
    web.get("/q/", consume.list_queues),
    web.get("/q/{queue}", consume.get_queue),
    web.post("/q/{queue}", produce.post_queue),
    web.delete("/q/{queue}", consume.delete_queue),
    web.post("/q/{queue}/reserve", reliable.reserve),
    web.post("/q/{queue}/ack", reliable.ack),
    web.post("/q/{queue}/nack", reliable.nack),
    web.post("/q/{queue}/extend", reliable.extend),
    web.post("/xmlrpc", xmlrpc.handle),
    web.get("/queue", jsonproto.get_help),
    web.post("/queue", jsonproto.post_command),
    web.get("/j/{queue}", jsonproto.job_page),
    web.get("/p/{queue}", admin.get_policy),
    web.post("/p/{queue}", admin.post_policy),
    web.get("/control", admin.list_control),
    web.get("/control/", admin.list_control),
    web.get("/control/{queue}", admin.get_control),
    web.post("/control/{queue}", admin.post_control),
    web.get("/stats", admin.all_stats),
    web.get("/stats/", admin.all_stats),
    web.get("/stats/{queue}", admin.queue_stats),
    web.get("/c/{queue}", streams.comet),
    web.get("/sse/{queue}", streams.sse),
    web.get("/ws/{queue}", streams.websocket),
    web.get("/livez", admin.livez),
    web.get("/healthz", admin.healthz),
]


def build_app(context: Context) -> web.Application:
    """The application for one daemon process, with its shared context."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=context.settings.max_body_size
    )
    app[CTX] = context
    app.add_routes(ROUTES)
    if context.settings.collectd:
        app.add_routes(collectd_routes())
    return app
