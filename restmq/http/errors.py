"""The one mapping from errors to HTTP responses (SPEC §3.8), and each request's deadline.

RestMQ errors carry their status; aiohttp's own HTTP errors (404, 405, 413, redirects) are
turned into the same JSON shape. Anything else is a bug: logged with its traceback and
answered 500 without internals. A storage fault is not logged here per request (a stalled Redis
makes thousands of them): the pipeliner logs each change of the storage's state once.

Every request but the long-lived streams runs inside a ``restmq.deadline`` scope of
``request_timeout`` seconds, so its storage calls answer 503 or 504 in time; a stream's
storage calls are bounded one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from restmq import deadline
from restmq.errors import (
    OutcomeUnknown,
    RestMQError,
    StorageError,
    StorageUnavailable,
    Unauthorized,
)
from restmq.http.params import query_fields
from restmq.http.render import CALLBACK, error
from restmq.protocol.names import check_callback

log = logging.getLogger("restmq.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_MESSAGES = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


def _from_restmq(exc: RestMQError) -> web.Response:
    if isinstance(exc, StorageUnavailable):
        return error(503, "storage unavailable", {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, OutcomeUnknown):
        return error(504, "outcome unknown", {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, StorageError) or exc.status >= 500:
        log.error("storage error: %s", exc.message)
        return error(500, "internal error")
    if isinstance(exc, Unauthorized):
        return error(401, exc.message, {"WWW-Authenticate": exc.challenge})
    return error(exc.status, exc.message)


def _from_http(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return exc  # redirects pass through
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    message = _HTTP_MESSAGES.get(exc.status, exc.reason.lower())
    return error(exc.status, message, headers)


def error_middleware(request_timeout: float, long_lived: frozenset[Handler]) -> Middleware:
    """The middleware mapping errors to responses; the handlers in ``long_lived`` (streams)
    get no request-wide deadline."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _route_handler(request) in long_lived:
            return await _answer(request, handler)
        with deadline.scope(request_timeout):
            return await _answer(request, handler)

    return middleware


def _route_handler(request: web.Request) -> object:
    route = request.match_info.route
    return getattr(route, "handler", None)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        _check_query_callback(request)
        return await handler(request)
    except RestMQError as exc:
        return _from_restmq(exc)
    except web.HTTPException as exc:
        return _from_http(exc)


def _check_query_callback(request: web.Request) -> None:
    """Validate ``callback`` before the handler runs, so a bad one changes nothing."""
    callback = query_fields(request).get("callback")
    if callback:
        request[CALLBACK] = check_callback(callback)
