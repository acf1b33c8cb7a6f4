"""Fuzzing of the pure parsers with hypothesis: the adapters' and XML-RPC's.

Every property is written once as a plain check function and run twice: a quick round with
hypothesis' default example count on every test run, and a `slow` round that keeps drawing
fresh examples for at least a minute. The properties: collectd parsers raise nothing but
CollectdParseError and accept every well-formed input; syslog functions never raise; the
framer's buffer and frames stay within max_line and its output does not depend on how the
stream was chunked; the XML-RPC parser raises nothing but XmlRpcParseError (on bytes, on
XML-ish text and on well-formed calls cut, spliced and salted with hostile pieces) and reads
every call that Python's ``xmlrpc.client`` writes as it was written.
"""

from __future__ import annotations

import contextlib
import json
import time
import xmlrpc.client
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restmq.protocol.collectd import (
    CollectdParseError,
    parse_json,
    parse_notification,
    parse_putval,
)
from restmq.protocol.syslog import (
    FACILITIES,
    SEVERITIES,
    SyslogFramer,
    parse_datagram,
    parse_line,
)
from restmq.protocol.xmlrpc import Call, XmlRpcParseError, parse_call

# Alphabets heavy in the characters each grammar cares about, so random text gets past the
# first check more often than st.text() alone would.
PUTVAL_CHARS = 'PUTVALputval "\\/=-:.+eE0123456789NUnaif \t\r\n\x00hostinterval'
NOTIFICATION_CHARS = "SeverityHost:FAILURE \t\r\n\x00-_.0123456789é"
SYSLOG_BYTES = b"<>0123456789 -:TZ.\n\r\x00OctNov[]hostsu\xff\xfe"

name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=8)
instance = st.one_of(st.just(""), name.map(lambda s: "-" + s))
number = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
unsigned = st.one_of(st.integers(0, 10**12).map(str), st.floats(0, 1e12).map(repr))
value_list = st.builds(
    lambda time_, values: ":".join([time_, *values]),
    st.one_of(st.just("N"), unsigned),
    st.lists(st.one_of(st.just("U"), number), min_size=1, max_size=4),
)


@st.composite
def putval_line(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A well-formed PUTVAL line and the record it must give."""
    host, plugin, type_ = draw(name), draw(name) + draw(instance), draw(name) + draw(instance)
    interval = draw(st.one_of(st.none(), unsigned))
    values = draw(value_list)
    ident = f"{host}/{plugin}/{type_}"
    ident = draw(st.sampled_from([ident, f'"{ident}"']))
    option = "" if interval is None else f" interval={interval}"
    expected = {
        "host": host,
        "plugin_instance": plugin,
        "type_instance": type_,
        "interval": None if interval is None else float(interval),
        "value": values,
    }
    return f"PUTVAL {ident}{option} {values}\r\n", expected


json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
collectd_item = st.fixed_dictionaries(
    {
        "host": name,
        "plugin": name,
        "type": name,
        "values": st.lists(
            st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
        ),
    },
    optional={
        "plugin_instance": st.text(max_size=5),
        "type_instance": st.text(max_size=5),
        "time": st.floats(0, 2e9),
        "interval": st.floats(0, 100),
        "dstypes": st.lists(st.sampled_from(["gauge", "derive"])),
        "dsnames": st.lists(name),
        "meta": json_value,
    },
)
# A collectd item with any of its fields replaced by an arbitrary JSON value.
mangled_item = st.builds(
    lambda item, extra: {**item, **extra},
    collectd_item,
    st.dictionaries(st.sampled_from(["host", "values", "time", "dsnames"]), json_value, max_size=2),
)

header = st.tuples(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,10}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), max_size=12),
)
syslog_line = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(list(SYSLOG_BYTES)), max_size=80).map(bytes),
    st.text(max_size=200),
    st.builds(lambda pri, rest: f"<{pri}>{rest}", st.integers(0, 999), st.text(max_size=80)),
)
framer_chunk = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from(list(b"12345 0\n\r\x00<>x")), max_size=40).map(bytes),
)


def check_putval_raises_only_its_error(text: str) -> None:
    with contextlib.suppress(CollectdParseError):
        parse_putval(text)


def check_wellformed_putval_parses(case: tuple[str, dict[str, Any]]) -> None:
    line, expected = case
    assert parse_putval(line) == [expected]


def check_json_raises_only_its_error(body: bytes | str) -> None:
    with contextlib.suppress(CollectdParseError):
        parse_json(body)


def check_collectd_json_items_are_kept_or_rejected(items: list[dict[str, Any]]) -> None:
    body = json.dumps(items)
    with contextlib.suppress(CollectdParseError):
        assert parse_json(body) == json.loads(body)


def check_wellformed_collectd_json_is_accepted(items: list[dict[str, Any]]) -> None:
    body = json.dumps(items).encode()
    assert parse_json(body) == json.loads(body)


def check_notification_raises_only_its_error(text: str) -> None:
    with contextlib.suppress(CollectdParseError):
        parse_notification(text)


def check_wellformed_notification_parses(case: tuple[list[tuple[str, str]], str]) -> None:
    headers, body = case
    text = "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body
    expected = [{k.lower(): v.strip()} for k, v in headers]
    assert parse_notification(text) == [*expected, {"event_text": body.strip()}]


def check_syslog_line_never_raises(line: bytes | str) -> None:
    parsed = parse_line(line)
    assert parsed["facility"] in (*FACILITIES, None)
    assert parsed["severity"] in (*SEVERITIES, None)
    assert (parsed["facility"] is None) == (parsed["severity"] is None)


def check_syslog_datagram_never_raises(data: bytes) -> None:
    for parsed in parse_datagram(data):
        assert parsed["line"]


def check_framer_stays_bounded(case: tuple[int, list[bytes]]) -> None:
    max_line, chunks = case
    framer = SyslogFramer(max_line=max_line)
    frames: list[bytes] = []
    for chunk in chunks:
        frames += framer.feed(chunk)
        assert framer.buffered <= max(max_line, 9)
    frames += framer.flush()
    assert all(0 < len(frame) <= max_line for frame in frames)
    whole = SyslogFramer(max_line=max_line)
    assert whole.feed(b"".join(chunks)) + whole.flush() == frames


# --- XML-RPC ---------------------------------------------------------------------------

# Text that XML 1.0 can carry and expat gives back unchanged (it turns \r into \n).
xml_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"
    ) | st.sampled_from("\t\n"),
    max_size=12,
)
xmlrpc_scalar = st.one_of(
    xml_text,
    st.integers(-(2**31), 2**31 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.binary(max_size=12),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
)
xmlrpc_value = st.recursive(
    xmlrpc_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(xml_text, inner, max_size=3)
    ),
    max_leaves=8,
)
method_name = st.from_regex(r"[A-Za-z0-9_.:/]{1,16}", fullmatch=True)
xmlrpc_call = st.tuples(method_name, st.lists(xmlrpc_value, max_size=4).map(tuple))
XMLRPC_PIECES = [
    b"<value>", b"</value>", b"<struct>", b"</struct>", b"<member>", b"</member>", b"<name>",
    b"</name>", b"<array>", b"<data>", b"</data>", b"<param>", b"<params>", b"<int>",
    b"</int>", b"<double>nan</double>", b"<i8>99999999999999999999999</i8>", b"<nil/>",
    b"<boolean>2</boolean>", b"<base64>=</base64>", b"<dateTime.iso8601>x", b"<fault>",
    b"<methodResponse>", b"</methodCall>", b"<methodName>", b"&amp;", b"&#0;", b"&#xD800;",
    b"&x;", b"<![CDATA[<]]>", b"<!-- c -->", b"<?pi x?>", b"<!DOCTYPE a [<!ENTITY x 'y'>]>",
    b'<?xml version="1.0" encoding="rot13"?>', b'<?xml version="1.0" encoding="utf-16"?>',
    b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00", b"\xc0\xae", b"\xed\xa0\x80",
    b"<ex:nil xmlns:ex='x'/>", b" ", b"\r\n",
]
XMLRPC_CHARS = "<>/=\"' &;#!?[]-:.xmlvaueintdoblsgrchyfMNCpP0123456789é\x00\n"


def _call_bytes(call: tuple[str, tuple[Any, ...]]) -> bytes:
    method, params = call
    return xmlrpc.client.dumps(params, method, allow_none=True).encode()


@st.composite
def mangled_call(draw: st.DrawFn) -> bytes:
    """A well-formed call, then a few cuts, splices and hostile pieces at random places."""
    body = bytearray(_call_bytes(draw(xmlrpc_call)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        edit = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if edit == "insert":
            body[at:at] = draw(st.sampled_from(XMLRPC_PIECES))
        elif edit == "delete":
            del body[at : at + draw(st.integers(1, 12))]
        else:
            body[at:at] = body[at : at + draw(st.integers(1, 40))]
    return bytes(body)


XMLRPC_TYPES = (str, int, bool, float, type(None), bytes, datetime, list, dict)


def check_xmlrpc_raises_only_its_error(body: bytes) -> None:
    with contextlib.suppress(XmlRpcParseError):
        call = parse_call(body)
        assert call.method and all(isinstance(p, XMLRPC_TYPES) for p in call.params)


def check_wellformed_xmlrpc_call_is_read_as_sent(call: tuple[str, tuple[Any, ...]]) -> None:
    method, params = call
    assert parse_call(_call_bytes(call)) == Call(method, params)


notification_text = st.one_of(st.text(), st.text(alphabet=NOTIFICATION_CHARS))
PROPERTIES: list[tuple[Callable[..., None], st.SearchStrategy[Any]]] = [
    (check_putval_raises_only_its_error, st.one_of(st.text(), st.text(alphabet=PUTVAL_CHARS))),
    (check_wellformed_putval_parses, putval_line()),
    (
        check_json_raises_only_its_error,
        st.one_of(st.binary(), st.text(), json_value.map(json.dumps)),
    ),
    (
        check_collectd_json_items_are_kept_or_rejected,
        st.lists(st.one_of(mangled_item, json_value), max_size=3),
    ),
    (check_wellformed_collectd_json_is_accepted, st.lists(collectd_item, max_size=3)),
    (check_notification_raises_only_its_error, notification_text),
    (
        check_wellformed_notification_parses,
        st.tuples(
            st.lists(header, min_size=1, max_size=5),
            st.text(alphabet=st.characters(blacklist_characters="\x00\r"), max_size=40),
        ),
    ),
    (check_syslog_line_never_raises, syslog_line),
    (
        check_syslog_datagram_never_raises,
        st.one_of(
            st.binary(),
            syslog_line.map(
                lambda line: line if isinstance(line, bytes) else line.encode("utf-8", "replace")
            ),
        ),
    ),
    (
        check_framer_stays_bounded,
        st.tuples(st.integers(1, 64), st.lists(framer_chunk, max_size=12)),
    ),
    (
        check_xmlrpc_raises_only_its_error,
        st.one_of(
            st.binary(max_size=200),
            st.text(alphabet=XMLRPC_CHARS, max_size=200).map(str.encode),
            mangled_call(),
        ),
    ),
    (check_wellformed_xmlrpc_call_is_read_as_sent, xmlrpc_call),
]


def run(check: Callable[..., None], strategy: st.SearchStrategy[Any], **options: Any) -> None:
    settings(deadline=None, **options)(given(strategy)(check))()


@pytest.mark.parametrize(
    ("check", "strategy"), [pytest.param(*prop, id=prop[0].__name__) for prop in PROPERTIES]
)
def test_parser_property_holds_for_generated_inputs(
    check: Callable[..., None], strategy: st.SearchStrategy[Any]
) -> None:
    run(check, strategy)


SLOW_SECONDS = 60.0


@pytest.mark.slow
@pytest.mark.timeout(SLOW_SECONDS * 3)
def test_parser_properties_hold_for_a_minute_of_generated_inputs() -> None:
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < SLOW_SECONDS:
        for check, strategy in PROPERTIES:
            run(
                check,
                strategy,
                max_examples=300,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
        rounds += 1
    assert rounds >= 1
