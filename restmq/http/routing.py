"""The path template of a routed request, as the route table, ACL table and metrics name it,
and the queue its path names."""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from aiohttp import web

from restmq.errors import BadRequest

_PATTERN = re.compile(r"\{(\w+):[^}]*\}")


@functools.lru_cache(maxsize=256)
def template_of(path: str) -> str:
    """A route path without its variables' regexes: ``/q/{queue:[^/]+}`` → ``/q/{queue}``."""
    return _PATTERN.sub(r"{\1}", path)


def route_template(request: web.Request) -> str | None:
    """``/q/{queue}`` for ``/q/jobs``; None for a 404 or 405."""
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        return None
    return template_of(resource.canonical)


def path_queue(request: web.Request) -> str | None:
    """The queue a routed request's path names (None: its route names none).

    The router decodes ``%C3%A9`` to ``é`` but leaves an escape that is not UTF-8 as it is,
    so ``/q/%ff`` would name the queue ``%ff``, which ``/q/%25ff`` names too: such a path is a
    400, as invalid UTF-8 is everywhere else. (Raw bytes above 0x7f never get this far:
    aiohttp's parser refuses them in the request line.)
    """
    queue = request.match_info.get("queue")
    if queue is None or "%" not in request.raw_path:
        return queue
    try:
        unquote(request.rel_url.raw_path, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the path is not valid UTF-8") from None
    return queue
