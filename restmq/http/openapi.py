"""``GET /openapi.json``: the OpenAPI 3.1 document of the broker's HTTP API (SPEC §7).

How this works. The document is assembled once per variant (with or without the collectd
routes, which a daemon registers only with ``--collectd``) from the operation table of
``restmq.http.openapi_paths`` and the components of ``restmq.http.openapi_schemas``. Each
operation gets the error answers that can occur on it: 400 everywhere (the query string and
its JSONP ``callback`` are checked on every route), 413 where a body is read, 503 where Redis
is touched, 504 where a write may go unanswered (every storage route but the reading GETs;
``GET /`` and ``GET /q/<queue>`` take a message), and 401/403 (and 503, from the access-key
lookup) where the access-control table protects the route; a row may describe one of these
itself (the listings say what their 400 is about). A GET gets its HEAD twin where the route
table registers one. Methods a path does not list answer 405 with ``Allow``.

``tests/openapi`` keep the document true: every registered route and method is in it and
nothing else, it validates as OpenAPI 3.1, and schemathesis checks a real broker's answers
against it.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from aiohttp import web

from restmq.http.access import ACCESS, UNLISTED
from restmq.http.context import ctx
from restmq.http.openapi_paths import COLLECTD, TABLE, Operation
from restmq.http.openapi_schemas import (
    ERRORS,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    SECURITY_SCHEMES,
    Schema,
)
from restmq.http.render import reply

DESCRIPTION = """\
RestMQ, a message broker over HTTP with its data in Redis (docs/api.md).

Parameters come from the query string or a form body; a JSON body is accepted wherever a form
is (the body wins over the query string). Answers are JSON followed by CRLF unless said
otherwise. Every JSON answer becomes JSONP (`<callback>(<json>);`, `application/javascript`)
when `callback` is given; errors are never wrapped. Errors are `{"error": "<message>"}`; a
method a path does not list answers 405 with `Allow`; an unknown path answers 404; no bad
input ever answers 500. A body sent with a GET or DELETE is read as fields too (and can be a
413). The queue names `.` and `..` are valid but cannot be put in a URL path.
"""
TAGS = [
    {"name": "produce", "description": "Adding messages."},
    {"name": "consume", "description": "Taking messages one request at a time; queues."},
    {"name": "leases", "description": "Reliable consumption: reserve, ack, nack, extend."},
    {"name": "json-protocol", "description": "The 1.x JSON protocol and its pages."},
    {"name": "xml-rpc", "description": "XML-RPC."},
    {"name": "admin", "description": "Policies, start/stop, stats."},
    {"name": "streams", "description": "Streaming consumers; OpenAPI describes only how "
     "each stream opens."},
    {"name": "operations", "description": "Health, metrics and this document."},
    {"name": "pages", "description": "The dashboard and the help page."},
    {"name": "collectd", "description": "collectd's write_http (with --collectd)."},
]
OPTIONAL: Schema = {}  # an empty security requirement: no credentials (no ACL file)
COOKIES: list[Schema] = [{"authCookie": []}, {"accessKeyCookie": []}]


def _version() -> str:
    try:
        return metadata.version("restmq")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0"


@cache
def document(collectd: bool = False) -> Schema:
    """The document (shared: never mutate it); ``collectd`` adds the collectd routes."""
    operations = [*TABLE, *COLLECTD] if collectd else TABLE
    return {
        "openapi": "3.1.0",
        "info": {"title": "RestMQ", "version": _version(), "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "tags": TAGS,
        "paths": _paths(operations),
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "responses": RESPONSES,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _paths(operations: list[Operation]) -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for op in operations:
        item = paths.setdefault(op.path, {})
        item[op.method.lower()] = _operation(op)
        if op.method == "GET" and op.head:
            item["head"] = _head(item["get"])
    return paths


def _operation(op: Operation) -> Schema:
    spec: Schema = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        spec["description"] = op.description
    if op.params:
        spec["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in op.params]
    if op.body is not None:
        spec["requestBody"] = op.body
    spec["responses"] = _responses(op)
    if _protected(op):
        spec["security"] = [OPTIONAL, {"basic": []}, {"accessKey": []},
                            *(COOKIES if op.cookies else [])]
    return {**spec, **op.extra}


# The GETs that change the queue: their answer may be lost after the take was sent.
TAKING_GETS = frozenset({"/", "/q/{queue}"})


def _protected(op: Operation) -> bool:
    """Whether the access-control table checks this route (a missing one is protected)."""
    return ACCESS.get((op.method, op.path), UNLISTED) is not None


def _error_statuses(op: Operation) -> set[int]:
    codes = {400, *op.errors}
    if op.body is not None:
        codes.add(413)
    if op.storage:
        codes.add(503)
        if op.method != "GET" or op.path in TAKING_GETS:
            codes.add(504)
    if _protected(op):
        codes |= {401, 403, 503}
    return codes


def _responses(op: Operation) -> Schema:
    """The row's answers, and the shared error answers it does not describe itself."""
    answers = dict(op.answers)
    for code in _error_statuses(op):
        answers.setdefault(str(code), {"$ref": f"#/components/responses/{ERRORS[code][0]}"})
    return dict(sorted(answers.items()))


def _head(get: Schema) -> Schema:
    """The HEAD twin of a GET operation: the same answers, without bodies."""
    responses = {code: _bodiless(answer) for code, answer in get["responses"].items()}
    return {**get, "operationId": get["operationId"] + "Head",
            "summary": get["summary"] + " (headers only)", "responses": responses}


def _bodiless(answer: Schema) -> Schema:
    if "$ref" in answer:
        answer = RESPONSES[answer["$ref"].rsplit("/", 1)[1]]
    return {key: value for key, value in answer.items() if key != "content"}


async def serve(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the document of this daemon's routes (JSONP with callback)."""
    return reply(request, document(ctx(request).settings.collectd))
