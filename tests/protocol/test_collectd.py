"""Table-driven tests of the collectd write_http parsers."""

from __future__ import annotations

import json

import pytest

from restmq.errors import BadRequest
from restmq.protocol.collectd import (
    CollectdParseError,
    CollectdValue,
    parse_json,
    parse_notification,
    parse_putval,
)


def value(
    value: str,
    *,
    host: str = "myhost",
    plugin_instance: str = "load",
    type_instance: str = "load",
    interval: float | None = 10.0,
) -> CollectdValue:
    return CollectdValue(
        host=host,
        plugin_instance=plugin_instance,
        type_instance=type_instance,
        interval=interval,
        value=value,
    )


PUTVAL_CASES = [
    pytest.param(
        "PUTVAL myhost/load/load interval=10.000 1732780000.123:0.05:0.1:0.15\r\n",
        [value("1732780000.123:0.05:0.1:0.15")],
        id="write_http_command_line_with_crlf",
    ),
    pytest.param(
        'PUTVAL "myhost/load/load" interval=10.000 N:0.05:0.10:0.15',
        [value("N:0.05:0.10:0.15")],
        id="quoted_identifier_and_time_now",
    ),
    pytest.param(
        'PUTVAL "my host/cpu-0/cpu-idle" interval=1 N:U',
        [
            value(
                "N:U",
                host="my host",
                plugin_instance="cpu-0",
                type_instance="cpu-idle",
                interval=1.0,
            )
        ],
        id="quoted_identifier_with_space_and_instances",
    ),
    pytest.param(
        'PUTVAL "a\\"b/p/t" 1:2',
        [value("1:2", host='a"b', plugin_instance="p", type_instance="t", interval=None)],
        id="escaped_quote_inside_identifier",
    ),
    pytest.param(
        "PUTVAL h/df-root/df_complex-free/extra 1.5:-3:4e10",
        [
            value(
                "1.5:-3:4e10",
                host="h",
                plugin_instance="df-root",
                type_instance="df_complex-free/extra",
                interval=None,
            )
        ],
        id="type_instance_keeps_later_slashes",
    ),
    pytest.param(
        "PUTVAL myhost/load/load 1:1",
        [value("1:1", interval=None)],
        id="missing_interval_is_none",
    ),
    pytest.param(
        'putval myhost/load/load interval="10" foo=bar 1:nan:inf:-inf',
        [value("1:nan:inf:-inf")],
        id="lowercase_command_quoted_interval_unknown_option_and_nan_gauges",
    ),
    pytest.param(
        "PUTVAL myhost/load/load interval=10 1:1 interval=20 2:2",
        [value("1:1"), value("2:2", interval=20.0)],
        id="several_value_lists_give_one_record_each",
    ),
    pytest.param(
        "\n  \r\nPUTVAL myhost/load/load interval=10 1:1\n\nPUTVAL h2/load/load 2:2\n",
        [value("1:1"), value("2:2", host="h2", interval=None)],
        id="blank_lines_are_ignored",
    ),
    pytest.param("", [], id="empty_body_gives_no_values"),
]


@pytest.mark.parametrize(("text", "expected"), PUTVAL_CASES)
def test_putval_line_becomes_the_five_key_record(text: str, expected: list[CollectdValue]) -> None:
    assert parse_putval(text) == expected


PUTVAL_ERRORS = [
    pytest.param("PUTNOTIF severity=okay time=1 message=x", 1, "not a PUTVAL", id="other_command"),
    pytest.param("hello world", 1, "not a PUTVAL", id="garbage"),
    pytest.param("PUTVAL", 1, "identifier", id="no_identifier"),
    pytest.param("PUTVAL myhost/load 1:2", 1, "identifier", id="two_part_identifier"),
    pytest.param("PUTVAL myhost//load 1:2", 1, "identifier", id="empty_plugin"),
    pytest.param("PUTVAL /load/load 1:2", 1, "identifier", id="empty_host"),
    pytest.param("PUTVAL h/p/-ti 1:2", 1, "identifier", id="empty_type_name"),
    pytest.param("PUTVAL h/p/t interval=abc 1:2", 1, "interval", id="bad_interval"),
    pytest.param("PUTVAL h/p/t interval=-1 1:2", 1, "interval", id="negative_interval"),
    pytest.param("PUTVAL h/p/t interval=10", 1, "value list", id="no_value_list"),
    pytest.param("PUTVAL h/p/t 1:abc", 1, "value list", id="non_numeric_value"),
    pytest.param("PUTVAL h/p/t 1", 1, "value list", id="time_without_values"),
    pytest.param("PUTVAL h/p/t U:1", 1, "value list", id="unknown_time"),
    pytest.param('PUTVAL "h/p/t 1:2', 1, "quote", id="unbalanced_quote"),
    pytest.param('PUTVAL h/p/t x"y" 1:2', 1, "quote", id="quote_inside_a_word"),
    pytest.param("PUTVAL h/p/t 1:2\x00", 1, "NUL", id="nul_byte"),
    pytest.param("PUTVAL h/p/t 1:2\r\n\r\nPUTVAL h/p 1:2", 3, "identifier", id="error_names_line"),
    pytest.param("PUTVAL h/p/t 1:2\n\n\x00", 3, "NUL", id="nul_names_its_line"),
]


@pytest.mark.parametrize(("text", "line_no", "reason"), PUTVAL_ERRORS)
def test_malformed_putval_raises_with_line_number(text: str, line_no: int, reason: str) -> None:
    with pytest.raises(CollectdParseError) as caught:
        parse_putval(text)
    assert caught.value.line_no == line_no
    assert reason in caught.value.reason


def test_collectd_parse_error_is_a_bad_request_with_status_400() -> None:
    error = CollectdParseError(4, "broken")
    assert isinstance(error, BadRequest)
    assert error.status == 400
    assert error.message == "collectd: line 4: broken"
    assert CollectdParseError(0, "broken").message == "collectd: broken"


LOAD_JSON = {
    "values": [0.05, 0.1, 0.15],
    "dstypes": ["gauge", "gauge", "gauge"],
    "dsnames": ["shortterm", "midterm", "longterm"],
    "time": 1732780000.123,
    "interval": 10.0,
    "host": "myhost",
    "plugin": "load",
    "plugin_instance": "",
    "type": "load",
    "type_instance": "",
}
MINIMAL_JSON = {"host": "h", "plugin": "p", "type": "t", "values": [1, None]}

JSON_CASES = [
    pytest.param(json.dumps([LOAD_JSON]).encode(), id="write_http_json_bytes"),
    pytest.param(json.dumps([LOAD_JSON, MINIMAL_JSON]), id="json_str_with_two_items"),
    pytest.param(json.dumps([{**MINIMAL_JSON, "meta": {"a": [1]}}]), id="unknown_keys_are_kept"),
    pytest.param("[]", id="empty_list"),
]


@pytest.mark.parametrize("body", JSON_CASES)
def test_collectd_json_is_returned_unchanged(body: bytes | str) -> None:
    assert parse_json(body) == json.loads(body)


JSON_ERRORS = [
    pytest.param(b"PUTVAL h/p/t 1:2", "invalid JSON", id="not_json"),
    pytest.param(b'{"host": "h"}', "JSON list", id="object_not_list"),
    pytest.param(b"[1]", "not an object", id="item_not_object"),
    pytest.param(b'[{"plugin": "p", "type": "t", "values": []}]', "'host'", id="missing_host"),
    pytest.param(
        b'[{"host": "", "plugin": "p", "type": "t", "values": []}]', "'host'", id="empty_host"
    ),
    pytest.param(
        b'[{"host": 1, "plugin": "p", "type": "t", "values": []}]', "'host'", id="host_not_string"
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": 1}]',
        "'values'",
        id="values_not_list",
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": ["1"]}]',
        "'values'",
        id="value_is_string",
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": [true]}]',
        "'values'",
        id="value_is_boolean",
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": [], "time": "x"}]',
        "'time'",
        id="time_not_number",
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": [], "dsnames": [1]}]',
        "'dsnames'",
        id="dsnames_not_strings",
    ),
    pytest.param(
        b'[{"host": "h", "plugin": "p", "type": "t", "values": [NaN]}]',
        "invalid JSON",
        id="nan_literal",
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "invalid JSON", id="deep_nesting"),
    pytest.param(b"[" + b"9" * 5000 + b"]", "invalid JSON", id="huge_integer"),
    pytest.param(b"[\xff]", "UTF-8", id="not_utf8"),
    pytest.param(b"[]\x00", "NUL", id="nul_byte"),
]


@pytest.mark.parametrize(("body", "reason"), JSON_ERRORS)
def test_malformed_collectd_json_is_rejected(body: bytes, reason: str) -> None:
    with pytest.raises(CollectdParseError) as caught:
        parse_json(body)
    assert reason in caught.value.reason


def test_invalid_json_error_names_the_line() -> None:
    with pytest.raises(CollectdParseError) as caught:
        parse_json("[\n{},\n}")
    assert caught.value.line_no == 3


NOTIFICATION = (
    "Severity: FAILURE\n"
    "Time: 1200928930.515\n"
    "Host: myhost.mydomain.org\n"
    "Plugin: cpu\n"
    "TypeInstance: idle\n"
    "\n"
    "This is an example notification.\n"
    "It has two lines.\n"
)

NOTIFICATION_CASES = [
    pytest.param(
        NOTIFICATION,
        [
            {"severity": "FAILURE"},
            {"time": "1200928930.515"},
            {"host": "myhost.mydomain.org"},
            {"plugin": "cpu"},
            {"typeinstance": "idle"},
            {"event_text": "This is an example notification.\nIt has two lines."},
        ],
        id="headers_in_order_then_event_text",
    ),
    pytest.param(
        "Severity: OKAY\r\nMessage: a: b\r\n\r\n  done \r\n",
        [{"severity": "OKAY"}, {"message": "a: b"}, {"event_text": "done"}],
        id="crlf_and_colon_inside_value",
    ),
    pytest.param(
        "Severity: WARNING\nHost: h",
        [{"severity": "WARNING"}, {"host": "h"}, {"event_text": ""}],
        id="headers_without_text_give_empty_event_text",
    ),
    pytest.param(
        "Severity: WARNING\nSeverity: OKAY\n\n\n\ntext\n\nmore",
        [{"severity": "WARNING"}, {"severity": "OKAY"}, {"event_text": "text\n\nmore"}],
        id="repeated_headers_kept_and_text_keeps_inner_blank_lines",
    ),
]


@pytest.mark.parametrize(("text", "expected"), NOTIFICATION_CASES)
def test_notification_becomes_list_of_one_key_objects(
    text: str, expected: list[dict[str, str]]
) -> None:
    assert parse_notification(text) == expected


NOTIFICATION_ERRORS = [
    pytest.param("Severity: FAILURE\nnot a header\n\ntext", 2, id="line_without_colon"),
    pytest.param("Severity: FAILURE\nBad Key: x\n\ntext", 2, id="key_with_space"),
    pytest.param("just some text", 1, id="text_without_headers"),
    pytest.param("", 1, id="empty_body"),
    pytest.param("\nSeverity: FAILURE", 1, id="starts_with_blank_line"),
    pytest.param("Severity: FAILURE\n\nte\x00xt", 3, id="nul_byte"),
]


@pytest.mark.parametrize(("text", "line_no"), NOTIFICATION_ERRORS)
def test_malformed_notification_raises_with_line_number(text: str, line_no: int) -> None:
    with pytest.raises(CollectdParseError) as caught:
        parse_notification(text)
    assert caught.value.line_no == line_no
