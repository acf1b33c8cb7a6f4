"""The table of the OpenAPI document: one ``Operation`` per route and method of the broker.

Each row says what the route takes and its success answers. The error answers are added by
``restmq.http.openapi`` from what the row says (a body can be too large, storage can be
down) and from the access-control table (a protected route can answer 401 and 403), so they
stay consistent across the rows. HEAD operations are derived from the GET rows, except where
the route table refuses HEAD (``head=False``: a HEAD would take or stream messages unseen).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from restmq.http.listing import DEFAULT_LIMIT, MAX_LIMIT
from restmq.http.openapi_schemas import ERRORS, TEXT, WS_HEADERS, Schema, ref

JS_TYPE = "application/javascript"
JSONP: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z_$][A-Za-z0-9_$.]*\\(.*\\);\\r\\n$",
    "description": "JSONP: `<callback>(<json>);` and CRLF, when `callback` was given.",
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One route and method: what it takes and what it answers on success."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    answers: dict[str, Schema]
    params: tuple[str, ...] = ()
    body: Schema | None = None
    errors: tuple[int, ...] = ()  # beyond 400 and those implied by body, storage and access
    storage: bool = True  # reads or writes Redis, so it can answer 503
    cookies: bool = False  # credentials may come as cookies (SSE and WebSocket)
    head: bool = True  # a GET with a HEAD twin (the route table refuses HEAD where it would take)
    description: str = ""
    extra: Schema = field(default_factory=dict)  # x-restmq-* notes for the reader


# --- answers ----------------------------------------------------------------------------


def json_answer(description: str, *names: str, jsonp: bool = True) -> Schema:
    """A JSON answer (one of the named schemas), and its JSONP variant."""
    schema = ref(names[0]) if len(names) == 1 else {"anyOf": [ref(n) for n in names]}
    media = {"application/json": {"schema": schema}}
    if jsonp:
        media[JS_TYPE] = {"schema": JSONP}
    return {"description": description, "content": media}


def media_answer(description: str, media: dict[str, Schema]) -> Schema:
    return {"description": description, "content": {k: {"schema": v} for k, v in media.items()}}


KEY_TEXT: Schema = {"type": "string", "pattern": "^.+:[0-9]+\\r\\n$"}
KEY_ANSWER = media_answer("The new message's key as text (`q:1` and CRLF).",
                          {"text/plain": KEY_TEXT, JS_TYPE: JSONP})
KEY_OR_BATCH = media_answer(
    "The key as text; for a JSON `values` batch, `{\"queue\", \"keys\"}`.",
    {"text/plain": KEY_TEXT, "application/json": ref("KeyBatch"), JS_TYPE: JSONP},
)
HTML = {"text/html": TEXT}
NOTHING = {"description": "No message to give: no body."}


def html_answer(description: str) -> dict[str, Schema]:
    return {"200": media_answer(description, HTML)}


# --- request bodies ---------------------------------------------------------------------


def fields_body(form: str, json: str | None = None, raw: dict[str, Schema] | None = None) -> Schema:
    """Fields as a form (urlencoded or multipart) or a JSON object; ``raw`` adds media types."""
    media = {
        "application/x-www-form-urlencoded": {"schema": ref(form)},
        "multipart/form-data": {"schema": ref(form)},
        "application/json": {"schema": ref(json or form)},
        **{kind: {"schema": schema} for kind, schema in (raw or {}).items()},
    }
    return {"content": media, "description": "Every field may also be sent in the query string."}


def raw_body(description: str, media: dict[str, Schema], examples: dict[str, object]) -> Schema:
    """A body that is not fields; ``examples`` gives one valid body per media type."""
    content = {
        kind: {"schema": schema, "example": examples[kind]} for kind, schema in media.items()
    }
    return {"required": True, "description": description, "content": content}


XMLRPC_CALL = (
    "<?xml version='1.0'?><methodCall><methodName>add</methodName><params>"
    "<param><value><string>xmlrpc-example</string></value></param>"
    "<param><value><string>hello</string></value></param></params></methodCall>"
)
PUTVAL = 'PUTVAL "web1/cpu-0/cpu-idle" interval=10.000 1700000000.000:98.5\n'
COLLECTD_JSON = [{
    "values": [98.5], "dstypes": ["gauge"], "dsnames": ["value"], "time": 1700000000.0,
    "interval": 10.0, "host": "web1", "plugin": "cpu", "plugin_instance": "0", "type": "cpu",
    "type_instance": "idle",
}]
NOTIFICATION = "Severity: WARNING\nTime: 1700000000\nHost: web1\n\nDisk almost full\n"


# --- the table --------------------------------------------------------------------------

_QUEUE = ("queue", "callback")
ONCE = "Idempotency-Key"
PRODUCE_NOTE = (
    "With an `Idempotency-Key` header (or `idempotency_key` field), a retry within the dedup "
    "window adds nothing and answers the first attempt's key(s); the same key with another "
    "request is a 422."
)
_PAGED = ("limit", "after", "callback")
BAD_LIMIT = f"A `limit` that is not a whole number from 1 to {MAX_LIMIT}"
LISTING_NOTE = (
    f"Paged, in name order (Unicode code points): at most `limit` queues (default "
    f"{DEFAULT_LIMIT}) whose names sort after `after`; `count` is the number of queues in all, "
    "and `next`, present only when more queues follow, is the `after` of the next page. "
    f"{BAD_LIMIT} is a 400."
)
BAD_PAGE: Schema = {
    **ERRORS[400][1],
    "description": f"{BAD_LIMIT}, or other bad input (the callback, the encoding, the body); a "
    "request line or header longer than 8190 bytes gets the HTTP parser's plain text.",
}


def paged(answer: Schema) -> dict[str, Schema]:
    """The answers of a paged listing: ``answer``, and the 400 of a bad ``limit``."""
    return {"200": answer, "400": BAD_PAGE}


STREAM_NOTE = (
    "A stream: the answer's headers come at once and the body never ends by itself (the "
    "client closes it, or the server on shutdown or when the queue is purged)."
)

PRODUCE = [
    Operation(
        "POST", "/", "addToQueueField", "Add a message to the queue named in the body", "produce",
        {"200": KEY_OR_BATCH}, ("callback", ONCE),
        fields_body("ProduceRootFields", "ProduceRootJSON"), (422,),
        description="`msg` wins over `value`; in a form an empty `value=` counts as missing. "
        + PRODUCE_NOTE,
    ),
    Operation(
        "POST", "/q/{queue}", "addMessage", "Add a message (or a batch) to a queue", "produce",
        {"200": KEY_OR_BATCH}, (*_QUEUE, ONCE),
        fields_body("ProduceFields", "ProduceJSON", {"text/plain": TEXT, "*/*": TEXT}),
        (422,),
        description="A JSON body without `value`, `msg` or `values`, or a body of any other "
        "content type, is the message itself (stored as the text received). " + PRODUCE_NOTE,
    ),
]

CONSUME = [
    Operation(
        "GET", "/", "takeFromQueueParam", "Take the oldest message of `?queue=`", "consume",
        {"200": json_answer("The message, removed from its queue.", "Taken"),
         "302": {"description": "No `queue`: to the dashboard.",
                 "headers": {"Location": {"required": True, "schema": TEXT}}}},
        ("rootQueue", "callback"), errors=(404,), head=False,
        description="Like `GET /q/{queue}`, but an empty queue answers 404.",
    ),
    *(
        Operation(
            "GET", path, f"listQueues{suffix}", "List the queues, a page at a time", "consume",
            paged(media_answer(
                "HTML for browsers; JSON with `Accept: application/json` or `callback`.",
                {"text/html": TEXT, "application/json": ref("Queues"), JS_TYPE: JSONP},
            )),
            _PAGED,
            description=LISTING_NOTE + " The HTML page links to the next page.",
        )
        for path, suffix in (("/q", ""), ("/q/", "Slash"))
    ),
    Operation(
        "GET", "/q/{queue}", "takeMessage", "Take the oldest message", "consume",
        {"200": json_answer("The message, removed; with `count`, a batch.", "Taken",
                            "TakenBatch"),
         "204": NOTHING},
        ("queue", "count", "wait", "callback"), head=False,
    ),
    Operation(
        "DELETE", "/q/{queue}", "purgeQueue", "Purge a queue", "consume",
        {"200": json_answer("`status` 1 when the queue existed.", "Purged")}, _QUEUE,
        description="Removes every message, lease, soft-get count, policy and status of the "
        "queue and closes its streaming consumers on every daemon. Its id counter is kept: keys "
        "keep counting, so a message added later never gets the key of a purged one. Its "
        "dead-letter queue `<queue>:dead` goes with it when that holds nothing.",
    ),
]

BATCH_NOTE = "; with `messages`, a batch of them."
LEASES = [
    Operation(
        "POST", "/q/{queue}/reserve", "reserve", "Lease the oldest message(s)", "leases",
        {"200": json_answer("The leased message; with `count`, a batch.", "Reserved",
                            "ReservedBatch"),
         "204": NOTHING},
        _QUEUE, fields_body("ReserveFields"),
    ),
    *(
        Operation(
            "POST", f"/q/{{queue}}/{verb}", verb, summary, "leases",
            {"200": json_answer(summary + BATCH_NOTE, answer, f"{answer}Batch")}, _QUEUE,
            fields_body(f"{name}Fields", f"{name}JSON"), (404, 409),
            description="A JSON body with `messages` settles a batch of leases in one step, "
            "answered per entry (200 even when some failed); a malformed entry is a 400 and "
            "nothing is done.",
        )
        for verb, name, summary, answer in (
            ("ack", "Ack", "Acknowledge (delete) a leased message", "Acked"),
            ("nack", "Nack", "Give a leased message back (now, later, or to `<queue>:dead`)",
             "Nacked"),
        )
    ),
    Operation(
        "POST", "/q/{queue}/extend", "extend", "Prolong a lease", "leases",
        {"200": json_answer("Prolong a lease", "Extended")}, _QUEUE, fields_body("ExtendFields"),
        (404, 409),
    ),
]

PROTOCOL = [
    Operation("GET", "/queue", "protocolHelp", "The JSON protocol's help page", "json-protocol",
              html_answer("An HTML page with a form."), storage=False),
    Operation(
        "POST", "/queue", "runCommand", "Run a JSON-protocol command", "json-protocol",
        {"200": json_answer("The answer; command errors are `{\"error\"}` with 200.",
                            "CommandAnswer")},
        ("callback", ONCE),
        {**fields_body("CommandFields", "Command", {"text/plain": TEXT}),
         "description": "The command as the form field `body` (or `msg`) or as the raw body."},
        description="Malformed JSON or no `cmd` is a 400. The `Idempotency-Key` header applies "
        "to an `add` without its own `idempotency_key` field.",
    ),
    Operation("GET", "/j/{queue}", "jobPage", "A queue's page", "json-protocol",
              html_answer("The last 10 messages waiting and the queue's counts."), ("queue",)),
    Operation(
        "POST", "/xmlrpc", "xmlrpc", "An XML-RPC call", "xml-rpc",
        {"200": media_answer("A methodResponse: the result or a fault.", {"text/xml": TEXT})},
        params=(ONCE,),
        body=raw_body("A methodCall: get, set, add, take, len, queues, reserve, ack.",
                      {"text/xml": TEXT}, {"text/xml": XMLRPC_CALL}),
        description="Faults: 1 empty queue, 2 bad input, 3 no such message, 4 wrong or expired "
        "receipt (or not leased), -32601 no such method. A body that is no XML-RPC call is a "
        "400.",
    ),
]

ADMIN = [
    Operation("GET", "/p/{queue}", "getPolicy", "A queue's policy", "admin",
              {"200": json_answer("The policy (and `max_deliveries` when set).", "Policy")},
              _QUEUE),
    Operation("POST", "/p/{queue}", "setPolicy", "Set a queue's policy and/or max_deliveries",
              "admin", {"200": json_answer("The queue's policy now.", "Policy")}, _QUEUE,
              fields_body("PolicyFields")),
    *(
        Operation("GET", path, f"listControl{suffix}", "The queues' statuses, a page at a time",
                  "admin", paged(json_answer("1 started, 0 stopped.", "ControlList")),
                  _PAGED, description=LISTING_NOTE)
        for path, suffix in (("/control", ""), ("/control/", "Slash"))
    ),
    Operation("GET", "/control/{queue}", "getControl", "A queue's status", "admin",
              {"200": json_answer("The status and the storage description.", "Control")},
              _QUEUE),
    Operation("POST", "/control/{queue}", "setControl", "Start or stop a queue", "admin",
              {"200": json_answer("The new status.", "ControlSet")}, _QUEUE,
              fields_body("ControlFields")),
    *(
        Operation("GET", path, f"allStats{suffix}", "The queues' counts, a page at a time",
                  "admin", paged(json_answer("The stats of a page of queues.", "AllStats")),
                  _PAGED, description=LISTING_NOTE)
        for path, suffix in (("/stats", ""), ("/stats/", "Slash"))
    ),
    Operation("GET", "/stats/{queue}", "queueStats", "A queue's counts", "admin",
              {"200": json_answer("The queue's stats.", "OneQueueStats")}, _QUEUE),
]

STREAMS = [
    Operation(
        "GET", "/c/{queue}", "comet", "Stream messages over chunked HTTP (comet)", "streams",
        {"200": media_answer("One `{\"key\", \"value\"}` CRLF chunk per message (JSONP with "
                             "`callback`); a bare CRLF as heartbeat.", {"text/plain": TEXT})},
        ("queue", "heartbeat", "callback"), description=STREAM_NOTE, head=False,
        extra={"x-restmq-stream": "comet"},
    ),
    Operation(
        "GET", "/sse/{queue}", "sse", "Stream messages as Server-Sent Events", "streams",
        {"200": media_answer("`id: <key>` / `data: {\"key\", \"value\"}` events; a "
                             "`: heartbeat` comment when idle.", {"text/event-stream": TEXT})},
        ("queue", "last_event_id", "Last-Event-ID"), cookies=True, description=STREAM_NOTE,
        head=False,
        extra={"x-restmq-stream": "sse"},
    ),
    Operation(
        "GET", "/ws/{queue}", "websocket", "Stream messages over a WebSocket", "streams",
        {"101": {"description": "Switching Protocols: the WebSocket (RFC 6455) is open."}},
        ("queue", *WS_HEADERS), cookies=True, head=False,
        description="OpenAPI cannot describe the frames: each message is one text frame "
        "holding `{\"key\", \"value\"}`; a text frame from the client holding a JSON-protocol "
        "command is run and answered in a frame; any other frame is echoed. A request that is "
        "not a WebSocket upgrade is a 400.",
        extra={"x-restmq-stream": "websocket"},
    ),
    Operation(
        "GET", "/events/stats", "statsEvents", "The dashboard's feed of stats", "streams",
        paged(media_answer("`event: stats` / `data: <the /stats/ JSON of the page>` each time "
                           "it changes; `event: unavailable` while Redis is down.",
                           {"text/event-stream": TEXT})),
        _PAGED, storage=False, description=STREAM_NOTE + " " + LISTING_NOTE,
        extra={"x-restmq-stream": "sse"},
    ),
]

OPERATIONS = [
    Operation("GET", "/livez", "livez", "The process answers", "operations",
              {"200": json_answer("Always ok; Redis is not touched.", "Live")}, ("callback",),
              storage=False),
    Operation("GET", "/healthz", "healthz", "The process, Redis and the pub/sub link answer",
              "operations", {"200": json_answer("All up.", "Health")}, ("callback",)),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics", "operations",
              {"200": media_answer("The Prometheus text format (version 0.0.4).",
                                   {"text/plain": TEXT})}, ("callback",), storage=False),
    Operation("GET", "/openapi.json", "openapi", "This document", "operations",
              {"200": media_answer("The OpenAPI 3.1 document of this daemon's routes.",
                                   {"application/json": {"type": "object"}, JS_TYPE: JSONP})},
              ("callback",), storage=False),
    Operation(
        "GET", "/static/{filename}", "staticFile", "The web pages and their assets", "pages",
        {"200": media_answer("The file.", {"text/html": TEXT, "text/css": TEXT,
                                           JS_TYPE: TEXT, "text/javascript": TEXT}),
         "206": {"description": "Part of the file (a `Range` request)."},
         "304": {"description": "Not modified (a conditional request)."},
         "412": {"description": "A failed `If-Match`/`If-Unmodified-Since` condition."},
         "416": {"description": "An unsatisfiable `Range`."}},
        ("filename", "callback"), errors=(404,), storage=False,
        description="`index.html` is the dashboard, `help.html` the JSON protocol's page.",
    ),
]

COLLECTD = [
    Operation(
        "POST", "/collectd/data", "collectdData", "Values from collectd's write_http", "collectd",
        {"200": KEY_ANSWER}, ("callback",),
        raw_body("`Format \"Command\"` (PUTVAL lines) or `Format \"JSON\"`.",
                 {"text/plain": TEXT, "application/json": {"type": "array"}},
                 {"text/plain": PUTVAL, "application/json": COLLECTD_JSON}),
        (415,), description="Queued in `collectd_data`. Only with `--collectd`.",
    ),
    Operation(
        "POST", "/collectd/event", "collectdEvent", "A notification from collectd", "collectd",
        {"200": KEY_ANSWER}, ("callback",),
        raw_body("`Key: value` header lines, a blank line, the message text; `curl -d` labels "
                 "it a form without encoding it, so that type is read as text too.",
                 {"text/plain": TEXT, "application/x-www-form-urlencoded": TEXT},
                 {"text/plain": NOTIFICATION, "application/x-www-form-urlencoded": NOTIFICATION}),
        (415,), description="Queued in `collectd_event`. Only with `--collectd`.",
    ),
]

TABLE = [*PRODUCE, *CONSUME, *LEASES, *PROTOCOL, *ADMIN, *STREAMS, *OPERATIONS]
