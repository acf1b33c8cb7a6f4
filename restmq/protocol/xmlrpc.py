"""XML-RPC method calls (SPEC §3.6): a strict parser of request bodies. Pure: bytes in, a Call
out, or an XmlRpcParseError (a 400) that says what is wrong.

How this works. The standard library's ``xmlrpc.client.loads`` is tolerant by design and raises
whatever its input provokes: it takes a ``<methodResponse>`` or a ``<fault>`` for a call, pairs
the items of a ``<struct>`` by position whatever their tags, ignores unknown elements, and
lets expat look any declared encoding up among Python's codecs (``rot13`` and ``base64`` are
codecs too). Here the body is decoded first, from a byte order mark or the declared encoding,
which must be one of ``ENCODINGS`` (those expat reads itself), and expat is given the text, so
it never looks an encoding up. It only builds a small tree of elements, refusing a DOCTYPE
(XML-RPC has no DTD, so no entity can be declared or expanded) and nesting deeper than
``MAX_DEPTH``; the tree is then read against the XML-RPC grammar, element by element:

    methodCall := methodName params?        methodName := [A-Za-z0-9_.:/]+
    params     := param*                    param      := value
    value      := text (a string) | i4 | int | i8 | boolean | string | double
                  | dateTime.iso8601 | base64 | nil | array | struct
    array      := data                      data       := value*
    struct     := member*                   member     := name value (a name is unique)

Whitespace between elements is ignored; any other text there, a missing or extra element, an
unknown one or a value that does not parse as its type is an error.
"""

from __future__ import annotations

import binascii
import codecs
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.parsers import expat

from restmq.errors import BadRequest

MAX_DEPTH = 32  # elements nested in each other: a call with a few levels of arrays and structs
_METHOD_NAME = re.compile(r"[A-Za-z0-9_.:/]+")
_INT = re.compile(r"[+-]?[0-9]{1,20}")
_DOUBLE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_XML_SPACE = " \t\r\n"
_DECLARED = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]{0,63})[\"']")
# The encodings expat reads without Python's codecs, as ``codecs.lookup`` names them.
ENCODINGS = frozenset({"utf-8", "utf-16", "iso8859-1", "ascii"})
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
DATETIME_FORMAT = "%Y%m%dT%H:%M:%S"


class XmlRpcParseError(BadRequest):
    """Raised when a body is not a well-formed XML-RPC method call; says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not an XML-RPC method call: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Call:
    """A method call: the method's name and its parameters, as Python values."""

    method: str
    params: tuple[Any, ...]


@dataclass(slots=True)
class _Element:
    tag: str
    children: list[_Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.text)


class _TreeBuilder:
    """expat's handlers: a tree of elements, at most ``MAX_DEPTH`` deep, with no DOCTYPE."""

    def __init__(self) -> None:
        self.root: _Element | None = None
        self._open: list[_Element] = []

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self._open) >= MAX_DEPTH:
            raise XmlRpcParseError(f"elements nested more than {MAX_DEPTH} deep")
        element = _Element(tag)
        if self._open:
            self._open[-1].children.append(element)
        else:
            self.root = element
        self._open.append(element)

    def end(self, tag: str) -> None:
        self._open.pop()

    def data(self, text: str) -> None:
        if self._open:
            self._open[-1].text.append(text)

    def doctype(self, *args: object) -> None:
        raise XmlRpcParseError("a DOCTYPE is not allowed")


def _encoding(body: bytes) -> str:
    """The codec of the body: its byte order mark, else its declared encoding, else UTF-8."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec
    declared = _DECLARED.match(body)
    if declared is None:
        return "utf-8"
    name = declared.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = ""
    if codec not in ENCODINGS:
        raise XmlRpcParseError(
            f"unsupported encoding {name!r}: send UTF-8, UTF-16, ISO-8859-1 or US-ASCII"
        )
    return codec


def _text(body: bytes) -> str:
    codec = _encoding(body)
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        raise XmlRpcParseError(f"the body is not valid {codec}") from None


def _tree(body: bytes) -> _Element:
    text = _text(body)
    builder = _TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = builder.doctype
    try:
        parser.Parse(text, True)  # text: expat reads it as UTF-8, whatever the declaration says
    except expat.ExpatError as exc:
        raise XmlRpcParseError(f"malformed XML: {expat.ErrorString(exc.code)}") from None
    if builder.root is None:  # pragma: no cover - expat refuses a document without a root
        raise XmlRpcParseError("no root element")
    return builder.root


def parse_call(body: bytes) -> Call:
    """The method call in an XML-RPC request body; XmlRpcParseError when it is not one."""
    root = _tree(body)
    if root.tag != "methodCall":
        raise XmlRpcParseError(f"the root element is <{root.tag}>, not <methodCall>")
    _no_text(root)
    tags = [child.tag for child in root.children]
    if tags not in (["methodName"], ["methodName", "params"]):
        raise XmlRpcParseError("<methodCall> must hold <methodName> and then <params>")
    name = root.children[0]
    _no_children(name)
    if not _METHOD_NAME.fullmatch(name.content):
        raise XmlRpcParseError("<methodName> must be letters, digits, '_', '.', ':' or '/'")
    params = root.children[1] if len(root.children) == 2 else _Element("params")
    return Call(name.content, tuple(_param(param) for param in _only(params, "param")))


def _param(param: _Element) -> Any:
    (value,) = _exactly(param, ["value"])
    return _value(value)


def _value(value: _Element) -> Any:
    if not value.children:
        return value.content  # a value without a type element is a string
    _no_text(value)
    if len(value.children) != 1:
        raise XmlRpcParseError("a <value> holds one typed element")
    typed = value.children[0]
    reader = _READERS.get(typed.tag)
    if reader is None:
        raise XmlRpcParseError(f"unknown value type <{typed.tag}>")
    return reader(typed)


def _array(array: _Element) -> list[Any]:
    (data,) = _exactly(array, ["data"])
    return [_value(value) for value in _only(data, "value")]


def _struct(struct: _Element) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for member in _only(struct, "member"):
        name, value = _exactly(member, ["name", "value"])
        _no_children(name)
        if name.content in members:
            raise XmlRpcParseError(f"the struct member {name.content!r} is named twice")
        members[name.content] = _value(value)
    return members


def _scalar(read: Callable[[str], Any], what: str) -> Callable[[_Element], Any]:
    """A reader of a typed element holding text; ``read`` raises ValueError on bad text."""

    def reader(element: _Element) -> Any:
        _no_children(element)
        try:
            return read(element.content)
        except ValueError:
            raise XmlRpcParseError(f"<{element.tag}> does not hold {what}") from None

    return reader


def _int(text: str) -> int:
    if not _INT.fullmatch(text.strip(_XML_SPACE)):
        raise ValueError(text)
    return int(text)


def _boolean(text: str) -> bool:
    booleans = {"0": False, "1": True}
    if text.strip(_XML_SPACE) not in booleans:
        raise ValueError(text)
    return booleans[text.strip(_XML_SPACE)]


def _double(text: str) -> float:
    number = float(text) if _DOUBLE.fullmatch(text.strip(_XML_SPACE)) else math.nan
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _base64(text: str) -> bytes:
    compact = "".join(text.split())
    return binascii.a2b_base64(compact.encode("ascii"), strict_mode=True) if compact else b""


def _datetime(text: str) -> datetime:
    return datetime.strptime(text.strip(_XML_SPACE), DATETIME_FORMAT)


def _nil(text: str) -> None:
    if text.strip(_XML_SPACE):
        raise ValueError(text)


_READERS: dict[str, Callable[[_Element], Any]] = {
    "string": _scalar(str, "text"),
    "i4": _scalar(_int, "a whole number"),
    "int": _scalar(_int, "a whole number"),
    "i8": _scalar(_int, "a whole number"),
    "boolean": _scalar(_boolean, "0 or 1"),
    "double": _scalar(_double, "a finite number"),
    "base64": _scalar(_base64, "base64"),
    "dateTime.iso8601": _scalar(_datetime, "a date and time (YYYYMMDDTHH:MM:SS)"),
    "nil": _scalar(_nil, "nothing"),
    "array": _array,
    "struct": _struct,
}


# --- structure checks ---------------------------------------------------------------------


def _no_text(element: _Element) -> None:
    if element.content.strip(_XML_SPACE):
        raise XmlRpcParseError(f"text is not allowed directly inside <{element.tag}>")


def _no_children(element: _Element) -> None:
    if element.children:
        raise XmlRpcParseError(f"<{element.tag}> holds text only, no elements")


def _only(element: _Element, tag: str) -> list[_Element]:
    """The children of ``element``, which must all be ``<tag>``."""
    _no_text(element)
    if any(child.tag != tag for child in element.children):
        raise XmlRpcParseError(f"<{element.tag}> may hold only <{tag}> elements")
    return element.children


def _exactly(element: _Element, tags: list[str]) -> list[_Element]:
    """The children of ``element``, which must be one of each of ``tags`` (in any order)."""
    _no_text(element)
    if sorted(child.tag for child in element.children) != sorted(tags):
        wanted = " and ".join(f"<{tag}>" for tag in tags)
        raise XmlRpcParseError(f"<{element.tag}> must hold exactly {wanted}")
    by_tag = {child.tag: child for child in element.children}
    return [by_tag[tag] for tag in tags]
