"""Response bodies: JSON (``\\r\\n``-terminated), JSONP, plain text keys, errors.

Every JSON-answering route goes through ``reply`` so the JSONP framing is the same on all of
them: ``<callback>(<json>);\\r\\n`` with ``Content-Type: application/javascript``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

CALLBACK = web.RequestKey("callback", str)
JSON_TYPE = "application/json"
JS_TYPE = "application/javascript"
TEXT_TYPE = "text/plain"


def dumps(obj: Any) -> str:
    """The broker's JSON encoding: UTF-8, SPEC §3's separators."""
    return json.dumps(obj, ensure_ascii=False)


def _callback(request: web.Request) -> str | None:
    return request.get(CALLBACK)


def reply(request: web.Request, obj: Any, status: int = 200) -> web.Response:
    """A JSON response, or JSONP when the request named a callback."""
    callback = _callback(request)
    if callback:
        return _js(callback, dumps(obj), status)
    return web.Response(
        text=dumps(obj) + "\r\n", status=status, content_type=JSON_TYPE, charset="utf-8"
    )


def reply_key(request: web.Request, key: str) -> web.Response:
    """A message key as text (``q:1\\r\\n``); with JSONP, the key as a JSON string."""
    callback = _callback(request)
    if callback:
        return _js(callback, dumps(key), 200)
    return web.Response(text=key + "\r\n", content_type=TEXT_TYPE, charset="utf-8")


def _js(callback: str, body: str, status: int) -> web.Response:
    text = f"{callback}({body});\r\n"
    return web.Response(text=text, status=status, content_type=JS_TYPE, charset="utf-8")


def no_content() -> web.Response:
    """204 with no body and no content type (the original wrongly sent a body)."""
    return web.Response(status=204)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The error body of SPEC §3.8: ``{"error": "<message>"}``."""
    return web.Response(
        text=dumps({"error": message}) + "\r\n",
        status=status,
        content_type=JSON_TYPE,
        charset="utf-8",
        headers=headers,
    )


def html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


async def nosniff(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response says its Content-Type is what it is, so a
    browser never guesses HTML or script from a message's value (a JSON answer, a comet
    stream or a raw text key included)."""
    response.headers["X-Content-Type-Options"] = "nosniff"
