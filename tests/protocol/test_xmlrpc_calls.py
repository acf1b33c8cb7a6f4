"""The strict XML-RPC request parser (restmq.protocol.xmlrpc), as tables of bodies.

Every well-formed call that Python's ``xmlrpc.client`` sends is read as it was sent; every
body that is not a method call raises XmlRpcParseError (a 400) saying what is wrong, and
nothing else: no encoding, DOCTYPE, response, fault or half-built struct gets further.
"""

from __future__ import annotations

import codecs
import encodings.aliases
import re
import xmlrpc.client
from datetime import datetime
from typing import Any

import pytest

from restmq.errors import BadRequest
from restmq.protocol.xmlrpc import ENCODINGS, MAX_DEPTH, Call, XmlRpcParseError, parse_call


def call_body(params: str, method: str = "len", declaration: str = "") -> bytes:
    return (
        f"{declaration}<methodCall><methodName>{method}</methodName>"
        f"<params>{params}</params></methodCall>"
    ).encode()


def param(value: str) -> str:
    return f"<param><value>{value}</value></param>"


WELL_FORMED: list[tuple[tuple[Any, ...], str]] = [
    ((), "queues"),
    (("q",), "len"),
    (("q", "v", 30), "add"),
    (("q", "", 1.5, True, False, None), "set"),
    (([1, "two", [3.0]], {"k": "v", "n": {"deep": [None]}}), "x.y:z/w"),
    ((b"\x00\xffbytes", datetime(2026, 12, 1, 8, 30, 5)), "take"),
    (("é ü 日本 \U0001f600", "  spaced  ", "a\nb\tc"), "set"),
    ((2**31 - 1, -(2**31)), "len"),
]


@pytest.mark.parametrize(("params", "method"), WELL_FORMED)
def test_what_python_xmlrpc_clients_send_is_read_as_sent(
    params: tuple[Any, ...], method: str
) -> None:
    body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
    assert parse_call(body) == Call(method, params)


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "iso-8859-1", "latin-1", "us-ascii"])
def test_a_call_in_a_declared_encoding_that_expat_reads_itself_is_read(encoding: str) -> None:
    text = "é" if encoding != "us-ascii" else "e"
    body = xmlrpc.client.dumps((text,), "set", encoding=encoding).encode(encoding)
    assert parse_call(body) == Call("set", (text,))


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_a_call_with_a_byte_order_mark_is_read_in_that_encoding(codec: str) -> None:
    body = xmlrpc.client.dumps(("ü",), "set", encoding="utf-16").encode(codec)
    if codec == "utf-16-be":
        body = b"\xfe\xff" + body
    assert parse_call(body) == Call("set", ("ü",))


def test_a_declared_encoding_is_never_looked_up_among_pythons_codecs() -> None:
    # With a byte order mark the declaration is not read: expat is given text.
    body = codecs.BOM_UTF8 + declared("rot13")
    assert parse_call(body) == Call("len", ("q",))


def test_a_value_without_a_type_is_a_string_and_i8_and_nil_are_accepted() -> None:
    body = call_body(param("plain") + param("<i8>9007199254740993</i8>") + param("<nil/>"))
    assert parse_call(body).params == ("plain", 9007199254740993, None)


def test_whitespace_between_elements_is_ignored() -> None:
    body = b"""<?xml version="1.0"?>
    <methodCall>
      <methodName>len</methodName>
      <params>
        <param> <value> <string>q</string> </value> </param>
      </params>
    </methodCall>
    """
    assert parse_call(body) == Call("len", ("q",))


def declared(encoding: str) -> bytes:
    return call_body(param("q"), declaration=f'<?xml version="1.0" encoding="{encoding}"?>')


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "malformed XML"),
    (b"not xml", "malformed XML"),
    (b"<methodCall>", "malformed XML"),
    (b"\xff\xfe\x00", "not valid utf-16"),
    (declared("x-foo"), "unsupported encoding 'x-foo': send UTF-8"),
    (declared("rot13"), "unsupported encoding 'rot13'"),
    (declared("base64"), "unsupported encoding 'base64'"),
    (declared("hex"), "unsupported encoding 'hex'"),
    (declared("unicode_escape"), "unsupported encoding"),
    (declared("shift_jis"), "unsupported encoding"),
    (declared("cp1252"), "unsupported encoding"),
    (declared("utf-16"), "malformed XML"),  # declared UTF-16, sent as UTF-8
    (b"<methodCall><methodName>len\xff</methodName></methodCall>", "not valid utf-8"),
    (declared("us-ascii").replace(b"q", "é".encode()), "not valid ascii"),
    (
        b'<?xml version="1.0"?><methodResponse><fault><value><struct>'
        b"<member><name>faultCode</name><value><int>1</int></value></member>"
        b"<member><name>faultString</name><value><string>x</string></value></member>"
        b"</struct></value></fault></methodResponse>",
        "<methodResponse>, not <methodCall>",
    ),
    (
        b"<methodResponse><params>" + param("q").encode() + b"</params></methodResponse>",
        "not <methodCall>",
    ),
    (call_body(param("<struct><member><value><int>1</int></value></member></struct>")),
     "<member> must hold exactly <name> and <value>"),
    (call_body(param("<struct><member><name>a</name></member></struct>")),
     "<member> must hold exactly <name> and <value>"),
    (call_body(param("<struct><member><name>a</name><value>1</value><value>2</value>"
                     "</member></struct>")), "<member> must hold exactly"),
    (call_body(param("<struct><member><name>a</name><value>1</value></member>"
                     "<member><name>a</name><value>2</value></member></struct>")),
     "named twice"),
    (call_body(param("<struct><value>1</value></struct>")), "only <member>"),
    (call_body(param("<array><value>1</value></array>")), "<array> must hold exactly <data>"),
    (call_body(param("<array><data><int>1</int></data></array>")), "only <value>"),
    (call_body(param("<int>1_0</int>")), "<int> does not hold a whole number"),
    (call_body(param("<int>0x10</int>")), "whole number"),
    (call_body(param("<i4>\u0661</i4>")), "whole number"),
    (call_body(param("<int>" + "9" * 30 + "</int>")), "whole number"),
    (call_body(param("<int></int>")), "whole number"),
    (call_body(param("<double>nan</double>")), "finite number"),
    (call_body(param("<double>1e400</double>")), "finite number"),
    (call_body(param("<double>inf</double>")), "finite number"),
    (call_body(param("<boolean>yes</boolean>")), "0 or 1"),
    (call_body(param("<base64>!!!</base64>")), "base64"),
    (call_body(param("<base64>é</base64>")), "base64"),
    (call_body(param("<dateTime.iso8601>yesterday</dateTime.iso8601>")), "date and time"),
    (call_body(param("<nil>x</nil>")), "nothing"),
    (call_body(param("<bigdecimal>1.5</bigdecimal>")), "unknown value type <bigdecimal>"),
    (call_body(param("<ex:nil/>")), "unknown value type <ex:nil>"),  # Apache's extension
    (call_body(param("<string>a</string><string>b</string>")), "one typed element"),
    (call_body(param("text<string>a</string>")), "text is not allowed"),
    (call_body(param("<string><b>x</b></string>")), "text only"),
    (call_body("<value>q</value>"), "only <param>"),
    (call_body("<param></param>"), "<param> must hold exactly <value>"),
    (call_body("", method=""), "<methodName> must be"),
    (call_body("", method="a b"), "<methodName> must be"),
    (call_body("", method="<x/>"), "text only"),
    (b"<methodCall><params></params></methodCall>", "<methodName> and then <params>"),
    (b"<methodCall><params/><methodName>len</methodName></methodCall>", "<methodName> and then"),
    (b"<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>",
     "<methodName> and then"),
    (b"<methodCall>junk<methodName>len</methodName></methodCall>", "text is not allowed"),
    (b"<methodName>len</methodName>", "the root element is <methodName>"),
    (
        b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<methodCall><methodName>&b;</methodName></methodCall>",
        "a DOCTYPE is not allowed",
    ),
    (b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><methodCall/>', "a DOCTYPE is not allowed"),
    (b"<methodCall><methodName>len&undefined;</methodName></methodCall>", "malformed XML"),
    (call_body(param("<array><data><value>" * 20 + "1" + "</value></data></array>" * 20)),
     f"nested more than {MAX_DEPTH} deep"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED, ids=range(len(MALFORMED)))
def test_a_body_that_is_not_a_method_call_is_refused_with_its_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(XmlRpcParseError) as caught:
        parse_call(body)
    assert reason in caught.value.reason
    assert isinstance(caught.value, BadRequest)
    assert caught.value.message.startswith("not an XML-RPC method call: ")


CODEC_NAMES = sorted(
    set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    | {"x-foo", "rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "idna", "punycode",
       "unicode_escape", "raw_unicode_escape", "utf-7", "utf-8-sig", "undefined", "charmap"}
)


ENCODING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")  # XML's EncName


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_an_encoding_is_read_only_when_expat_reads_it_itself(name: str) -> None:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = ""
    text = declared(name).decode()
    if not ENCODING_NAME.fullmatch(name):
        with pytest.raises(XmlRpcParseError, match="malformed XML"):
            parse_call(text.encode())
    elif codec in ENCODINGS:
        assert parse_call(text.encode(codec)) == Call("len", ("q",))
    else:
        with pytest.raises(XmlRpcParseError, match=f"unsupported encoding '{re.escape(name)}'"):
            parse_call(text.encode())
