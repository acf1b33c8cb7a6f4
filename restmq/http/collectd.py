"""collectd's ``write_http`` endpoints (SPEC §5): ``POST /collectd/data`` and ``/collectd/event``.

How this works: the Content-Type picks a parser from a table (any other type is a 415 before
the body is read). The body is read whole, bounded by ``max_body_size`` (413), decoded as
UTF-8 and handed to the pure parsers of :mod:`restmq.protocol.collectd`, which raise a 400 for
any malformed line. Only a body that parsed completely becomes one message, so a rejected
request queues nothing.

* ``/collectd/data`` → queue ``collectd_data``: ``text/plain`` (``Format "Command"``) becomes the
  JSON list of PUTVAL records; ``application/json`` (``Format "JSON"``) is validated and stored
  as the text received. A body with no value at all is a 400.
* ``/collectd/event`` → queue ``collectd_event``: a notification (``Key: value`` headers, blank
  line, text) becomes a JSON list of one-key objects. The original README's ``event.sh`` posts it
  with ``curl -d``, which labels it ``application/x-www-form-urlencoded`` without encoding it,
  so that type is read as raw text, like ``text/plain``.

The stored message must also fit ``max_message_size`` (413). The answer is the message's key
as text, as for ``POST /q/<queue>`` (the original answered the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from restmq.errors import UnsupportedMediaType
from restmq.http.context import ctx
from restmq.http.params import FORM, JSON, read_body
from restmq.http.render import TEXT_TYPE, dumps, reply_key
from restmq.protocol.collectd import (
    CollectdParseError,
    parse_json,
    parse_notification,
    parse_putval,
)

DATA_QUEUE = "collectd_data"
EVENT_QUEUE = "collectd_event"

Parser = Callable[[str], str]  # body text → the message to queue (raises a 400)


def _putval(text: str) -> str:
    records = parse_putval(text)
    if not records:
        raise CollectdParseError(0, "no PUTVAL line in the body")
    return dumps(records)


def _json(text: str) -> str:
    if not parse_json(text):
        raise CollectdParseError(0, "the JSON list holds no value")
    return text


def _event(text: str) -> str:
    return dumps(parse_notification(text))


_DATA_PARSERS: Mapping[str, Parser] = {TEXT_TYPE: _putval, JSON: _json}
_EVENT_PARSERS: Mapping[str, Parser] = {TEXT_TYPE: _event, FORM: _event}


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise CollectdParseError(0, "body is not UTF-8") from None


async def _queue_body(
    request: web.Request, queue: str, parsers: Mapping[str, Parser]
) -> web.Response:
    parse = parsers.get(request.content_type)
    if parse is None:
        raise UnsupportedMediaType(request.content_type, tuple(parsers))
    context = ctx(request)
    message = context.check_size(parse(_decode(await read_body(request))))
    (key,) = await context.store.add(queue, [message])
    return reply_key(request, key)


async def post_data(request: web.Request) -> web.Response:
    """``POST /collectd/data``: values from write_http, ``Format "Command"`` or ``"JSON"``."""
    return await _queue_body(request, DATA_QUEUE, _DATA_PARSERS)


async def post_event(request: web.Request) -> web.Response:
    """``POST /collectd/event``: one notification, as the original ``event.sh`` sends it."""
    return await _queue_body(request, EVENT_QUEUE, _EVENT_PARSERS)


def collectd_routes() -> list[web.RouteDef]:
    """The collectd routes; added to the route table only when ``settings.collectd`` is on."""
    return [
        web.post("/collectd/data", post_data),
        web.post("/collectd/event", post_event),
    ]
