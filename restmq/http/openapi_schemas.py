"""The reusable parts of the OpenAPI document: JSON schemas, parameters and error answers.

Pure data (plain dicts), built from the same limits the handlers check, so the document cannot
drift from them: queue names (``restmq.keys``), counts and seconds (``restmq.protocol.fields``),
batches and ``max_deliveries``. ``restmq.http.openapi_paths`` refers to these by name.
"""

from __future__ import annotations

from typing import Any

from restmq.http.admin import MAX_DELIVERIES
from restmq.http.commands import MAX_BATCH, MAX_SETTLE
from restmq.http.listing import DEFAULT_LIMIT, MAX_LIMIT
from restmq.keys import MAX_QUEUE_NAME
from restmq.protocol import fields as checks

Schema = dict[str, Any]

QUEUE_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_QUEUE_NAME,
    "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F/]+$",
    "description": "1 to 256 characters of UTF-8, without control characters and without '/'.",
}
# "." and ".." are valid names, but URLs drop such path segments (RFC 3986 §5.2.4), so the
# routes with the name in the path cannot reach them; POST / and GET /?queue= can.
PATH_QUEUE_NAME: Schema = {**QUEUE_NAME, "not": {"enum": [".", ".."]}}
KEY: Schema = {"type": "string", "pattern": "^.+:[0-9]+$", "description": "`<queue>:<n>`"}
TEXT: Schema = {"type": "string"}
STRING_LIST: Schema = {"type": "array", "items": TEXT}
IDEMPOTENCY_KEY: Schema = {
    "type": "string",
    "pattern": "^[!-~]{1,255}$",
    "description": "1 to 255 visible ASCII characters naming one produce request (a UUID): its "
    "retries within the dedup window add nothing.",
}
CALLBACK: Schema = {
    "type": "string",
    "maxLength": 64,
    "pattern": "^[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*$",
    "description": "A JavaScript function reference (dotted names allowed, no reserved word).",
}


def seconds(maximum: float, description: str) -> Schema:
    """A number of seconds, sent as a JSON number or as text in a form or query string."""
    return {"type": "number", "minimum": 0, "maximum": maximum, "description": description}


def closed(required: list[str], **properties: Schema) -> Schema:
    """An object with exactly these properties (those in ``required`` always present)."""
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


TTL = seconds(checks.MAX_SECONDS, "The message disappears whole after this many seconds.")
DELAY = seconds(checks.MAX_SECONDS, "The message becomes visible after this many seconds.")
WAIT = seconds(checks.MAX_WAIT, "Long polling: wait up to this long for a message.")
COUNT: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": checks.MAX_COUNT,
    "description": "Take up to this many; the answer is then a batch.",
}
TIMEOUT: Schema = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": checks.MAX_VISIBILITY,
    "default": checks.DEFAULT_VISIBILITY,
    "description": "The lease's visibility timeout, in seconds.",
}
VALUES: Schema = {
    "type": "array",
    "items": TEXT,
    "minItems": 1,
    "maxItems": MAX_BATCH,
    "description": "A batch of messages, added in this order.",
}
STATUS_NUMBER: Schema = {"type": "integer", "enum": [0, 1], "description": "1 started, 0 stopped"}
POLICY: Schema = {"type": "string", "enum": ["broadcast", "roundrobin"]}
COUNTER: Schema = {"type": "integer", "minimum": 0}
STATS_FIELDS: dict[str, Schema] = {
    "name": TEXT,
    "len": COUNTER,
    "status": {"type": "string", "enum": ["started", "stopped"]},
    "policy": POLICY,
    "consumers": COUNTER,
    "leased": COUNTER,
    "delayed": COUNTER,
    "dead": COUNTER,
}

# The paged listings (restmq.http.listing): count is every queue, next the cursor of the next page.
TOTAL: Schema = {**COUNTER, "description": "How many queues are listed in all, not on this page."}
NEXT: Schema = {**TEXT, "description": "Present only when more queues follow: the last name of "
                "this page; ask again with `after=<next>`."}
LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                 "description": f"Queues per page, 1 to {MAX_LIMIT}; out of range is a 400."}
AFTER: Schema = {**TEXT, "description": "The cursor: list the queues whose names sort after this "
                 "one (Unicode code points); the `next` of the previous page."}

OUTCOME: Schema = {"type": "string", "enum": ["requeued", "delayed", "dead"]}
FAILED: Schema = {
    "type": "array",
    "items": closed(["key", "error"], key=TEXT, error=TEXT),
    "description": "The entries that could not be settled, each with the reason (no such "
    "message, a wrong or expired receipt, not leased, a key of another queue); the others "
    "were.",
}
LEASE_ENTRY: Schema = {
    "type": "object",
    "required": ["key", "receipt"],
    "properties": {"key": TEXT, "receipt": {"type": "string", "minLength": 1}, "delay": DELAY},
    "description": "A lease to settle; `delay` is read by nack only.",
}
LEASES: Schema = {
    "type": "array",
    "items": LEASE_ENTRY,
    "minItems": 1,
    "maxItems": MAX_SETTLE,
    "description": "A batch ack or nack, answered per entry; a malformed entry refuses the "
    "whole batch.",
}

SCHEMAS: dict[str, Schema] = {
    "Error": closed(["error"], error=TEXT),
    "QueueName": QUEUE_NAME,
    "Key": KEY,
    "Taken": closed(["key", "value", "count"], key=KEY, value=TEXT, count=COUNTER),
    "TakenBatch": closed(["queue", "messages"], queue=TEXT,
                         messages={"type": "array", "items": ref("Taken")}),
    "Reserved": closed(
        ["queue", "key", "value", "receipt", "deliveries"],
        queue=TEXT, key=KEY, value=TEXT, receipt=TEXT, deliveries={"type": "integer", "minimum": 1},
    ),
    "ReservedBatch": closed(["queue", "messages"], queue=TEXT,
                            messages={"type": "array", "items": ref("Reserved")}),
    "KeyBatch": closed(["queue", "keys"], queue=TEXT, keys={"type": "array", "items": KEY}),
    "Purged": closed(["queue", "status", "purged"], queue=TEXT, status={"enum": [0, 1]},
                     purged=COUNTER),
    "Acked": closed(["queue", "key", "acked"], queue=TEXT, key=TEXT, acked={"const": True}),
    "Nacked": closed(["queue", "key", "outcome"], queue=TEXT, key=TEXT, outcome=OUTCOME),
    "AckedBatch": closed(["queue", "acked", "failed"], queue=TEXT, acked=STRING_LIST,
                         failed=FAILED),
    "NackedBatch": closed(
        ["queue", "nacked", "failed"], queue=TEXT, failed=FAILED,
        nacked={"type": "array", "items": closed(["key", "outcome"], key=TEXT, outcome=OUTCOME)},
    ),
    "Extended": closed(["queue", "key", "timeout"], queue=TEXT, key=TEXT,
                       timeout={"type": "number"}),
    "Queues": closed(["queues", "count"], queues=STRING_LIST, count=TOTAL, next=NEXT),
    "Policy": closed(
        ["queue", "value"], queue=TEXT, value=POLICY,
        max_deliveries={"type": "integer", "minimum": 0, "maximum": MAX_DELIVERIES},
    ),
    "Control": closed(
        ["redis", "queue", "status"], redis=TEXT, queue=TEXT,
        status=closed(["queue", "status"], queue=TEXT, status=STATUS_NUMBER),
    ),
    "ControlSet": closed(["stat"], stat=closed(["queue", "status"], queue=TEXT,
                                                status=STATUS_NUMBER)),
    "ControlList": closed(
        ["redis", "queues", "count"], redis=TEXT, count=TOTAL, next=NEXT,
        queues={"type": "object",
                "additionalProperties": closed(["queue", "status"], queue=TEXT,
                                               status=STATUS_NUMBER)},
    ),
    "QueueStats": closed(list(STATS_FIELDS), **STATS_FIELDS),
    "AllStats": closed(
        ["queues", "redis", "count"], redis=TEXT, count=TOTAL, next=NEXT,
        queues={"type": "object", "additionalProperties": ref("QueueStats")},
    ),
    "OneQueueStats": closed(["redis", "queue", *STATS_FIELDS], redis=TEXT, queue=TEXT,
                            **STATS_FIELDS),
    "Live": closed(["status"], status={"const": "ok"}),
    "Health": closed(["status", "redis", "pubsub"], status={"const": "ok"}, redis=TEXT,
                     pubsub={"const": "up"}),
    "StreamedMessage": closed(["key", "value"], key=KEY, value=TEXT),
}

# --- the JSON protocol (POST /queue, WebSocket frames) ------------------------------------

_COMMAND_FIELDS: dict[str, Schema] = {
    "cmd": {"type": "string", "enum": ["add", "get", "take", "del", "reserve", "ack", "nack",
                                       "extend"]},
    "queue": QUEUE_NAME,
    "value": TEXT,
    "values": VALUES,
    "key": TEXT,
    "receipt": TEXT,
    "messages": LEASES,
    "idempotency_key": IDEMPOTENCY_KEY,
    "ttl": TTL,
    "delay": DELAY,
    "count": COUNT,
    "wait": WAIT,
    "timeout": TIMEOUT,
}
SCHEMAS["Command"] = {
    "type": "object",
    "required": ["cmd"],
    "properties": _COMMAND_FIELDS,
    "description": "A JSON-protocol command; which fields it reads depends on `cmd`.",
}
SCHEMAS["CommandAnswer"] = {
    "anyOf": [
        closed(["queue", "value", "key"], queue=TEXT, value=TEXT, key=KEY),
        closed(["queue", "value", "key", "count"], queue=TEXT, value=TEXT, key=KEY,
               count=COUNTER),
        closed(["queue", "deleted", "key"], queue=TEXT, deleted={"type": "boolean"}, key=TEXT),
        *(ref(name) for name in ("KeyBatch", "TakenBatch", "Reserved", "ReservedBatch",
                                 "Acked", "Nacked", "AckedBatch", "NackedBatch",
                                 "Extended", "Error")),
    ],
    "description": "The command's answer; a command error is `{\"error\": ...}` with status 200.",
}

# --- request bodies of the producing and lease routes ------------------------------------

_CALLBACK_FIELD = {"callback": CALLBACK}
SCHEMAS["ProduceFields"] = {
    "type": "object",
    "properties": {"value": TEXT, "msg": {**TEXT, "description": "Wins over `value`."},
                   "ttl": TTL, "delay": DELAY, "idempotency_key": IDEMPOTENCY_KEY,
                   **_CALLBACK_FIELD},
}
SCHEMAS["ProduceJSON"] = {
    "type": "object",
    "properties": {**SCHEMAS["ProduceFields"]["properties"], "values": VALUES},
}
SCHEMAS["ProduceRootFields"] = {
    "type": "object",
    "required": ["queue"],
    "properties": {"queue": QUEUE_NAME, **SCHEMAS["ProduceFields"]["properties"]},
}
SCHEMAS["ProduceRootJSON"] = {
    "type": "object",
    "required": ["queue"],
    "properties": {"queue": QUEUE_NAME, **SCHEMAS["ProduceJSON"]["properties"]},
}
SCHEMAS["ReserveFields"] = {
    "type": "object",
    "properties": {"timeout": TIMEOUT, "count": COUNT, "wait": WAIT, **_CALLBACK_FIELD},
}


def lease_fields(**extra: Schema) -> Schema:
    """The fields of ack/nack/extend: the message's key and its lease's receipt."""
    return {
        "type": "object",
        "required": ["key", "receipt"],
        "properties": {"key": TEXT, "receipt": TEXT, **extra, **_CALLBACK_FIELD},
    }


SCHEMAS["AckFields"] = lease_fields()
SCHEMAS["NackFields"] = lease_fields(delay=DELAY)
SCHEMAS["AckBatch"] = {
    "type": "object",
    "required": ["messages"],
    "properties": {"messages": LEASES, **_CALLBACK_FIELD},
}
SCHEMAS["NackBatch"] = {
    "type": "object",
    "required": ["messages"],
    "properties": {"messages": LEASES,
                   "delay": {**DELAY, "description": "The delay of the entries without one."},
                   **_CALLBACK_FIELD},
}
SCHEMAS["AckJSON"] = {"anyOf": [ref("AckFields"), ref("AckBatch")]}
SCHEMAS["NackJSON"] = {"anyOf": [ref("NackFields"), ref("NackBatch")]}
SCHEMAS["ExtendFields"] = lease_fields(timeout=TIMEOUT)
SCHEMAS["PolicyFields"] = {
    "type": "object",
    "properties": {
        "policy": POLICY,
        "max_deliveries": {"type": "integer", "minimum": 0, "maximum": MAX_DELIVERIES,
                           "description": "0 clears it."},
        **_CALLBACK_FIELD,
    },
    "description": "At least one of `policy` and `max_deliveries`.",
}
SCHEMAS["ControlFields"] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["start", "stop"]}, **_CALLBACK_FIELD},
}
SCHEMAS["CommandFields"] = {
    "type": "object",
    "properties": {
        "body": {**TEXT, "contentMediaType": "application/json",
                 "contentSchema": ref("Command"), "description": "The command, as JSON text."},
        "msg": {**TEXT, "description": "Read when `body` is absent."},
        **_CALLBACK_FIELD,
    },
}

# --- parameters -------------------------------------------------------------------------


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    parameter: Schema = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


PARAMETERS: dict[str, Schema] = {
    "queue": {"name": "queue", "in": "path", "required": True, "schema": PATH_QUEUE_NAME},
    "callback": _query("callback", CALLBACK, "JSONP: answer `<callback>(<json>);` instead."),
    "count": _query("count", COUNT),
    "wait": _query("wait", WAIT),
    "heartbeat": _query("heartbeat", seconds(checks.MAX_SECONDS, "Send a bare CRLF when idle.")),
    "last_event_id": _query("last_event_id", KEY, "Like the `Last-Event-ID` header."),
    "Last-Event-ID": {"name": "Last-Event-ID", "in": "header", "schema": KEY,
                      "description": "Replay the broadcast messages after this key first."},
    "limit": _query("limit", LIMIT),
    "after": _query("after", AFTER),
    "rootQueue": _query("queue", QUEUE_NAME, "Take from this queue; without it, a redirect."),
    "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "schema": IDEMPOTENCY_KEY},
    "filename": {"name": "filename", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[^/]+$"},
                 "examples": {"dashboard": {"value": "index.html"}}},
}
# The headers of a WebSocket upgrade (RFC 6455 §4.1); without them GET /ws/{queue} is a 400.
WS_HEADERS: dict[str, Schema] = {
    "Upgrade": {"type": "string", "const": "websocket"},
    "Connection": {"type": "string", "pattern": "[Uu]pgrade", "example": "Upgrade"},
    "Sec-WebSocket-Key": {"type": "string", "description": "16 random bytes in base64."},
    "Sec-WebSocket-Version": {"type": "string", "const": "13"},
}
PARAMETERS.update(
    {name: {"name": name, "in": "header", "required": True, "schema": schema}
     for name, schema in WS_HEADERS.items()}
)

# --- error answers ----------------------------------------------------------------------


def _error(description: str, **headers: Schema) -> Schema:
    answer: Schema = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if headers:
        answer["headers"] = {
            name: {"required": True, "schema": schema} for name, schema in headers.items()
        }
    return answer


# A request line or header over 8190 bytes is refused by aiohttp's HTTP parser itself, before
# any handler or middleware: that 400 is plain text.
_BAD_REQUEST = _error("Bad input: a field, the callback, the encoding or the body; a request "
                      "line or header longer than 8190 bytes gets the HTTP parser's plain text.")
_BAD_REQUEST["content"]["text/plain"] = {"schema": TEXT}

ERRORS: dict[int, tuple[str, Schema]] = {
    400: ("BadRequest", _BAD_REQUEST),
    401: ("Unauthorized", _error("Credentials needed (ACL file or access key).",
                                 **{"WWW-Authenticate": TEXT})),
    403: ("Forbidden", _error("Not allowed for this address, user or access key.")),
    404: ("NotFound", _error("No such message (or route).")),
    405: ("MethodNotAllowed", _error("Another method than the route's (every path, every "
                                     "method not listed for it).", Allow=TEXT)),
    409: ("Conflict", _error("A wrong or expired receipt (the lease is not yours), or a "
                             "message that is not leased.")),
    413: ("TooLarge", _error("The body is larger than --max-body-size, or a message larger "
                             "than --max-message-size.")),
    415: ("UnsupportedMediaType", _error("A Content-Type the route does not accept.")),
    422: ("IdempotencyConflict", _error("This Idempotency-Key came with another request (other "
                                        "values, TTL or delay) within the dedup window.")),
    503: ("Unavailable", _error("Redis is unavailable and nothing changed; retry later.",
                                **{"Retry-After": {"type": "integer", "minimum": 0}})),
    504: ("OutcomeUnknown", _error("A write was sent to Redis but its answer never came: it may "
                                   "or may not have been applied. Retry a produce with the same "
                                   "Idempotency-Key; a take may have removed a message.",
                                   **{"Retry-After": {"type": "integer", "minimum": 0}})),
}
RESPONSES: dict[str, Schema] = dict(ERRORS.values())
SECURITY_SCHEMES: dict[str, Schema] = {
    "basic": {"type": "http", "scheme": "basic",
              "description": "HTTP Basic, from the ACL file's username and password."},
    "accessKey": {"type": "http", "scheme": "bearer",
                  "description": "An access key made with `restmq keys`."},
    "authCookie": {"type": "apiKey", "in": "cookie", "name": "auth",
                   "description": "`<user>:<password>`; WebSocket and SSE routes only."},
    "accessKeyCookie": {"type": "apiKey", "in": "cookie", "name": "access_key",
                        "description": "An access key; WebSocket and SSE routes only."},
}
