"""Request parameters: query string merged with a form, JSON or raw body (SPEC §3).

Input is decoded strictly: invalid UTF-8, malformed forms and malformed JSON are 400s, an
oversized body is a 413, and nothing is done for such a request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from restmq.errors import BadRequest, MessageTooLarge
from restmq.http.render import CALLBACK
from restmq.protocol.names import check_callback

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"
MAX_SECONDS = 10 * 365 * 24 * 3600


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

    def seconds(self, name: str) -> float:
        """A non-negative number of seconds (0 when absent)."""
        value = self.fields.get(name)
        if value is None or value == "":
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BadRequest(f"{name} must be a number of seconds") from None
        if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
            raise BadRequest(f"{name} must be between 0 and {MAX_SECONDS} seconds")
        return number


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


def parse_json(text: str) -> Any:
    """Parse JSON text, turning any failure into a 400."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("malformed JSON body") from None


async def read_body(request: web.Request) -> bytes:
    """The whole body, or 413 when it exceeds the configured maximum."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise MessageTooLarge("request body too large") from None


async def read_params(request: web.Request) -> Params:
    """Query fields merged with the body's fields (the body wins on a clash)."""
    params = Params(fields=query_fields(request))
    if request.body_exists:
        await _read_body_into(request, params)
    _set_callback(request, params)
    return params


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
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _set_callback(request: web.Request, params: Params) -> None:
    callback = params.fields.get("callback")
    if callback is None or callback == "":
        return
    if not isinstance(callback, str):
        raise BadRequest("callback must be a string")
    request[CALLBACK] = check_callback(callback)
