"""The one mapping from errors to HTTP responses (SPEC §3.8).

RestMQ errors carry their status; aiohttp's own HTTP errors (404, 405, 413, redirects) are
turned into the same JSON shape. Anything else is a bug: logged with its traceback and
answered 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from restmq.errors import RestMQError, StorageError, StorageUnavailable, Unauthorized
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
        log.warning("storage unavailable: %s", exc.message)
        return error(503, "storage unavailable", {"Retry-After": str(exc.retry_after)})
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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
