"""The path template of a routed request, as the route table, ACL table and metrics name it."""

from __future__ import annotations

import functools
import re

from aiohttp import web

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
