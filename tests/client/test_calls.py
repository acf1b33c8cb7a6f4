"""The client's pure parts, with tables of cases: error mapping, answer reading, stream
decoding, backoff, and the CLI's batching and tables."""

from __future__ import annotations

import pytest

from restmq.cli_client import batches, table
from restmq.client import (
    AckResult,
    Lease,
    LeaseFailure,
    Message,
    NackResult,
    QueueStats,
    calls,
)
from restmq.client.calls import Answer, error_for, finish
from restmq.client.stream import (
    Backoff,
    CometDecoder,
    FrameDecoder,
    LineBuffer,
    SSEDecoder,
    StreamPlan,
    retryable,
)
from restmq.errors import (
    BadRequest,
    ClientError,
    Forbidden,
    IdempotencyConflict,
    MessageGone,
    MessageTooLarge,
    NotFound,
    NotLeased,
    OutcomeUnknown,
    RestMQError,
    StaleReceipt,
    StorageUnavailable,
    Unauthorized,
    UnexpectedAnswer,
)

ERROR = '{"error": "the message"}\r\n'


@pytest.mark.parametrize(
    ("status", "key", "expected"),
    [
        (400, "", BadRequest),
        (401, "", Unauthorized),
        (403, "", Forbidden),
        (404, "", NotFound),
        (404, "q:1", MessageGone),
        (409, "q:1", StaleReceipt),
        (413, "", MessageTooLarge),
        (422, "", IdempotencyConflict),
        (503, "", StorageUnavailable),
        (504, "", OutcomeUnknown),
        (500, "", UnexpectedAnswer),
        (405, "", UnexpectedAnswer),
    ],
)
def test_each_error_status_maps_to_its_error_class(
    status: int, key: str, expected: type[RestMQError]
) -> None:
    error = error_for(Answer(status, ERROR), "q", key)
    assert type(error) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ERROR, "the message"),
        ("plain words\r\n", "plain words"),
        ("", "status 418"),
        ('["not", "an object"]', '["not", "an object"]'),
    ],
)
def test_the_error_message_comes_from_the_body(text: str, message: str) -> None:
    error = error_for(Answer(418, text))
    assert isinstance(error, UnexpectedAnswer) and error.message.endswith(message)


@pytest.mark.parametrize(
    ("status", "kind"), [(503, StorageUnavailable), (504, OutcomeUnknown)]
)
def test_a_503_or_504_carries_its_retry_after(
    status: int, kind: type[StorageUnavailable | OutcomeUnknown]
) -> None:
    error = error_for(Answer(status, ERROR, retry_after="7"))
    assert isinstance(error, kind) and error.retry_after == 7
    without = error_for(Answer(status, ERROR))
    assert isinstance(without, kind) and without.retry_after == 0


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("message q:3 is not leased", NotLeased),
        ("wrong or expired receipt for q:3: the lease is not yours", StaleReceipt),
    ],
)
def test_a_409_says_whether_the_message_is_not_leased_or_the_receipt_is_stale(
    message: str, kind: type[StaleReceipt]
) -> None:
    error = error_for(Answer(409, f'{{"error": "{message}"}}'), "q", "q:3")
    assert type(error) is kind and error.message == message
    assert (error.queue, error.key) == ("q", "q:3")


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"key": 1, "value": "v"}', '{"value": "v"}', '{"key": "q:1"}'],
)
def test_an_answer_of_the_wrong_shape_is_an_unexpected_answer(text: str) -> None:
    with pytest.raises(UnexpectedAnswer):
        finish(calls.take("q", 0), Answer(200, text))


def test_answers_are_read_into_values() -> None:
    assert finish(calls.add("q", "v", None, None), Answer(200, "q:1\r\n")) == "q:1"
    assert finish(calls.take("q", 0), Answer(204, "")) is None
    assert finish(calls.get("q"), Answer(200, '{"error": "empty queue"}')) is None
    with pytest.raises(BadRequest, match="what is wrong"):
        finish(calls.get("q"), Answer(200, '{"error": "what is wrong"}'))
    stats = '{"name": "q", "len": 2, "status": "stopped", "policy": "roundrobin", ' \
        '"consumers": 1, "leased": 0, "delayed": 3, "dead": 4}'
    assert finish(calls.stats("q"), Answer(200, stats)) == QueueStats(
        "q", 2, "stopped", "roundrobin", 0, 3, 4, 1
    )


@pytest.mark.parametrize(
    ("queue", "path"),
    [
        ("plain", "/q/plain"),
        ("..", "/q/%2E%2E"),
        ("a b?#%", "/q/a%20b%3F%23%25"),
        ("é", "/q/%C3%A9"),
    ],
)
def test_queue_names_are_escaped_in_paths(queue: str, path: str) -> None:
    assert calls.queue_path("/q/", queue) == path


def test_every_add_carries_an_idempotency_key_of_its_own_or_the_callers() -> None:
    first, second = calls.add("q", "v", None, None), calls.add("q", "v", None, None)
    batch = calls.add_many("q", ["a", "b"], None, None)
    keys = [c.headers["Idempotency-Key"] for c in (first, second, batch)]
    assert all(keys) and len(set(keys)) == 3
    assert calls.add("q", "v", None, None, "mine").headers == {"Idempotency-Key": "mine"}


def test_leases_are_batched_by_queue_in_their_order_and_in_chunks() -> None:
    leases = [Lease("a", "a:1", "r"), Lease("b", "b:1", "r"), Lease("a", "a:2", "r"),
              Lease("a", "a:3", "r")]
    assert calls.by_queue(leases, size=2) == [
        ("a", [leases[0], leases[2]]), ("a", [leases[3]]), ("b", [leases[1]])
    ]
    assert calls.by_queue([]) == []


def test_batch_settlements_are_read_into_results() -> None:
    acked = finish(
        calls.ack_many("q", [Lease("q", "q:1", "r")]),
        Answer(200, '{"queue": "q", "acked": ["q:1"], "failed": [{"key": "q:2", "error": "e"}]}'),
    )
    assert acked == AckResult(["q:1"], [LeaseFailure("q", "q:2", "e")])
    nacked = finish(
        calls.nack_many("q", [Lease("q", "q:1", "r")], None),
        Answer(200, '{"queue": "q", "nacked": [{"key": "q:1", "outcome": "dead"}], "failed": []}'),
    )
    assert nacked == NackResult({"q:1": "dead"}, [])
    with pytest.raises(UnexpectedAnswer):
        finish(calls.ack_many("q", []), Answer(200, '{"queue": "q", "acked": [1], "failed": []}'))


def test_optional_fields_are_left_out_of_request_bodies() -> None:
    assert calls.add("q", "", None, None).body == {"value": ""}
    assert calls.add("q", "v", 0, 5).body == {"value": "v", "ttl": 0, "delay": 5}
    assert calls.take_many("q", 3, 0).query == {"count": "3"}
    assert calls.take("q", 2.5).query == {"wait": "2.5"}


# ---------------------------------------------------------------------------- streams


def test_lines_split_on_newlines_only_across_chunks() -> None:
    lines = LineBuffer()
    assert lines.feed("ab") == []
    assert lines.feed("c\u2028d\r\ne") == ["abc\u2028d"]
    assert lines.feed("f\n\n") == ["ef", ""]


def _m(key: str, value: str) -> Message:
    return Message("q", key, value, 0)


SSE_STREAM = (
    ': heartbeat\n\nid: q:1\ndata: {"key": "q:1", "value": "a\\nb"}\n\n'
    'retry: 10\nid: q:2\ndata: {"key": "q:2", "value": "\u2028"}\n\n'
)


@pytest.mark.parametrize("size", [1, 3, 7, len(SSE_STREAM)])
def test_sse_events_are_decoded_whatever_the_chunking(size: int) -> None:
    decoder = SSEDecoder("q")
    chunks = [SSE_STREAM[i : i + size] for i in range(0, len(SSE_STREAM), size)]
    found = [message for chunk in chunks for message in decoder.feed(chunk)]
    assert found == [_m("q:1", "a\nb"), _m("q:2", "\u2028")]


def test_comet_lines_skip_heartbeats_and_frames_skip_command_answers() -> None:
    comet = CometDecoder("q")
    assert comet.feed('\r\n{"key": "q:1", "value": "v"}\r\n{"key"') == [_m("q:1", "v")]
    assert comet.feed(': "q:2", "value": ""}\r\n') == [_m("q:2", "")]
    frames = FrameDecoder("q")
    assert frames.feed('{"key": "q:3", "value": "w"}') == [_m("q:3", "w")]
    assert frames.feed('{"queue": "q", "deleted": true}') == []
    with pytest.raises(UnexpectedAnswer):
        frames.feed("echo")


def test_the_plan_sends_last_event_id_over_sse_only() -> None:
    sse = StreamPlan("q", "sse", 60)
    assert sse.headers() == {}
    sse.seen(_m("q:7", "v"))
    assert sse.headers() == {"Last-Event-ID": "q:7"}
    comet = StreamPlan("q", "comet", 60, last_event_id="q:7")
    assert comet.headers() == {}
    assert comet.path() == "/c/q?heartbeat=20"
    assert StreamPlan("é", "ws", 60).path() == "/ws/%C3%A9"


def test_backoff_grows_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial=1, maximum=4)
    bounds = [(0.5, 1), (1, 2), (2, 4), (2, 4)]
    for low, high in bounds:
        assert low <= backoff.delay() <= high
    backoff.reset()
    assert backoff.delay() <= 1


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (ClientError("connection refused"), True),
        (StorageUnavailable("down"), True),
        (OutcomeUnknown("outcome unknown"), True),
        (UnexpectedAnswer(502, "bad gateway"), True),
        (BadRequest("bad name"), False),
        (Unauthorized("who are you"), False),
        (NotFound("no route"), False),
    ],
)
def test_only_transient_errors_are_retried(error: RestMQError, again: bool) -> None:
    assert retryable(error) is again
    plan = StreamPlan("q", "sse", 60)
    if again:
        assert plan.pause(error) is not None
    else:
        with pytest.raises(type(error)):
            plan.pause(error)


def test_without_reconnect_a_clean_end_stops_and_errors_are_raised() -> None:
    plan = StreamPlan("q", "sse", 60, reconnect=False)
    assert plan.pause(None) is None
    with pytest.raises(ClientError):
        plan.pause(ClientError("gone"))


# ---------------------------------------------------------------------------- CLI helpers


def test_batches_respect_the_count_and_the_byte_budget() -> None:
    lines = [b"a\n", b"bb\r\n", b"\n", b"last"]
    assert list(batches(lines, 2, 1000)) == [(["a", "bb"], 6), (["", "last"], 5)]
    assert [values for values, _ in batches(lines, 10, 3)] == [["a", "bb"], ["", "last"]]


def test_tables_pad_their_columns() -> None:
    assert table(["name", "len"], [["q", 10], ["longer", 2]]) == (
        "NAME    LEN\nq       10\nlonger  2"
    )
