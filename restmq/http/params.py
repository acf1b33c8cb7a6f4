"""Request parameters: query string merged with a form, JSON or raw body (SPEC §3).

Input is decoded strictly: invalid UTF-8, malformed forms and malformed JSON are 400s, an
oversized body is a 413, and nothing is done for such a request.

A request is parsed once (STYLE habit 15): ``read_params`` keeps its result on the request, so
the access check (``restmq.http.access``) and the handler read the very same fields. A field
sent both in the query and in the body takes the body's value, for both of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage

from restmq.errors import BadRequest, MessageTooLarge
from restmq.http.render import CALLBACK
from restmq.protocol import fields as checks
from restmq.protocol.names import check_callback

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"


@dataclass(slots=True)
class Params:
    """What a request said: named fields, and the body's text when it was not a form."""

    fields: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None
    json_body: Any = None
    from_form: bool = True

    def text(self, *names: str) -> str | None:
        """The first of ``names`` that is present; in a form an empty value counts as missing."""
        for name in names:
            value = self.fields.get(name)
            if value is None or (value == "" and self.from_form):
                continue
            if not isinstance(value, str):
                raise BadRequest(f"field {name!r} must be a string")
            return value
        return None

    def seconds(self, name: str, maximum: float = checks.MAX_SECONDS) -> float:
        """A non-negative number of seconds (0 when absent)."""
        return checks.seconds(self.fields.get(name), name, maximum=maximum)

    def count(self, name: str = "count") -> int:
        """How many messages a request wants (1 when absent, at most ``checks.MAX_COUNT``)."""
        return checks.count(self.fields.get(name), name)


PARAMS = web.RequestKey("restmq_params", Params)


def query_fields(request: web.Request) -> dict[str, str]:
    """The query string, decoded strictly as UTF-8."""
    return _parse_form(request.rel_url.raw_query_string, "query string")


def _parse_form(text: str, what: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"the {what} is not valid UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"malformed {what}: {exc}") from None
    return dict(pairs)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """Parse strict JSON text (no NaN or Infinity), turning any failure into a 400."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadRequest("malformed JSON body") from None


async def read_body(request: web.Request) -> bytes:
    """The whole body, or 413 when it exceeds the configured maximum."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise MessageTooLarge("request body too large") from None


async def read_params(request: web.Request) -> Params:
    """Query fields merged with the body's fields (the body wins on a clash), parsed on the
    first call and the same object on every later call for the request."""
    params = request.get(PARAMS)
    if params is None:
        params = request[PARAMS] = await _parse_params(request)
    return params


async def _parse_params(request: web.Request) -> Params:
    params = Params(fields=query_fields(request))
    if request.body_exists:
        await _read_body_into(request, params)
    elif _declares_raw_body(request):
        params.from_form = False
        params.raw = ""
    _set_callback(request, params)
    return params


def _declares_raw_body(request: web.Request) -> bool:
    """An empty body sent with a non-form content type is an empty raw value (SPEC §3.1).

    Without a Content-Type an empty body is no body at all, so a bare ``curl -X POST``
    still answers "missing value".
    """
    declared = hdrs.CONTENT_TYPE in request.headers
    return declared and request.content_type not in (FORM, MULTIPART, JSON)


async def _read_body_into(request: web.Request, params: Params) -> None:
    kind = request.content_type
    if kind == MULTIPART:
        params.fields.update(await _multipart(request))
        return
    text = _decode(await read_body(request))
    if kind == FORM:
        params.fields.update(_parse_form(text, "form body"))
    elif kind == JSON:
        params.from_form = False
        params.raw = text
        params.json_body = parse_json(text)
        if isinstance(params.json_body, dict):
            params.fields.update(params.json_body)
    else:
        params.from_form = False
        params.raw = text


async def _multipart(request: web.Request) -> dict[str, str]:
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise MessageTooLarge("request body too large") from None
    except ValueError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    except BadHttpMessage:  # a part's headers do not parse
        raise BadRequest("malformed multipart body: invalid part headers") from None
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _set_callback(request: web.Request, params: Params) -> None:
    callback = params.fields.get("callback")
    if callback is None or callback == "":
        return
    if not isinstance(callback, str):
        raise BadRequest("callback must be a string")
    request[CALLBACK] = check_callback(callback)
