"""Parsers for what collectd's ``write_http`` plugin POSTs (SPEC §5). Pure: no I/O.

How this works: each public function takes the request body and either returns the value
to queue or raises :class:`CollectdParseError` (a ``BadRequest``, so HTTP 400) naming the
line at fault.

* ``Format "Command"`` sends collectd's plain-text protocol, one command per line,
  ``PUTVAL <identifier> [key=value ...] <time>:<v1>[:<v2>...]`` with CRLF endings.
  A line is cut into fields by one regex (a field is a bare word, a double-quoted string with
  backslash escapes, or ``key="quoted"``). The first field is the identifier
  ``host/plugin[-instance]/type[-instance]``; after it, a field with ``=`` is an option and any
  other field is a value list, which becomes one record with the options seen before it.
* ``Format "JSON"`` sends a JSON list of value objects; it is checked against a table of
  field → type check and returned unchanged.
* A notification is ``Key: value`` header lines, a blank line, then free text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TypedDict

from restmq.errors import BadRequest

__all__ = [
    "CollectdParseError",
    "CollectdValue",
    "parse_json",
    "parse_notification",
    "parse_putval",
]


class CollectdParseError(BadRequest):
    """Raised when a collectd body is malformed; ``line_no`` is 1-based, 0 when not per line."""

    def __init__(self, line_no: int, reason: str) -> None:
        where = f"line {line_no}: " if line_no else ""
        super().__init__(f"collectd: {where}{reason}")
        self.line_no = line_no
        self.reason = reason


class CollectdValue(TypedDict):
    """One ``PUTVAL`` value list, in the shape the original RestMQ queued (SPEC §5)."""

    host: str
    plugin_instance: str  # "plugin[-instance]", the identifier's 2nd part
    type_instance: str  # "type[-instance]", the identifier's 3rd part
    interval: float | None  # seconds, from "interval=", None when not sent
    value: str  # "time:v1[:v2...]" exactly as sent


class _Malformed(ValueError):
    """A line-level parse failure; turned into CollectdParseError with the line number."""


# A field: optional `key=` then a quoted string, or a bare run without quotes; then a gap.
_FIELD = re.compile(r'((?:[^\s"=]+=)?"(?:[^"\\]|\\.)*"|[^\s"]+)(?:\s+|\Z)')
_ESCAPE = re.compile(r"\\(.)")
_UNSIGNED = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
# collectd prints a NaN/infinite gauge with printf("%g"), so "nan" and "inf" are real output.
_VALUE = rf"(?:U|[-+]?{_UNSIGNED}|[-+]?(?i:nan|inf(?:inity)?))"
_VALUE_LIST = re.compile(rf"(?:N|{_UNSIGNED})(?::{_VALUE})+", re.ASCII)
_INTERVAL = re.compile(_UNSIGNED, re.ASCII)
_HEADER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*):[ \t]*(.*)", re.ASCII)


def parse_putval(text: str) -> list[CollectdValue]:
    """Parse collectd's plain-text ``PUTVAL`` lines (write_http ``Format "Command"``).

    Blank lines are skipped, so an empty body gives ``[]``. A line holding several value
    lists (``PUTVAL id t1:v t2:v``, which collectd accepts) gives one record per value list.
    Options other than ``interval`` are accepted and ignored, as collectd does.
    """
    _reject_nul(text)
    records: list[CollectdValue] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            records.extend(_putval_line(line_no, line.strip()))
    return records


def parse_json(body: bytes | str) -> list[dict[str, object]]:
    """Check a write_http ``Format "JSON"`` body and return the decoded list unchanged.

    Each item must be an object with non-empty string ``host``, ``plugin`` and ``type`` and a
    ``values`` list of numbers or nulls; the other collectd fields are type-checked when
    present and unknown fields (``meta``) are kept. NaN/Infinity literals are rejected because
    they are not JSON. An empty list is returned as ``[]``; the caller decides about it.
    """
    text = _decode(body)
    _reject_nul(text)
    items = _load_json(text)
    if not isinstance(items, list):
        raise CollectdParseError(0, "expected a JSON list of value objects")
    for index, item in enumerate(items):
        _check_json_value(index, item)
    return items


def parse_notification(text: str) -> list[dict[str, str]]:
    """Parse a notification into ``[{"severity": ...}, {"time": ...}, ..., {"event_text": ...}]``.

    Header keys are lowercased as sent (``TypeInstance`` → ``typeinstance``); repeated headers
    are all kept in order. ``event_text`` is everything after the first blank line, stripped,
    or ``""`` when there is none. At least one header line is required.
    """
    _reject_nul(text)
    lines = [line.rstrip("\r") for line in text.split("\n")]
    blank = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    if blank == 0:
        raise CollectdParseError(1, "a notification starts with 'Key: value' header lines")
    headers = [_header(line_no, line) for line_no, line in enumerate(lines[:blank], start=1)]
    event_text = "\n".join(lines[blank + 1 :]).strip()
    return [*headers, {"event_text": event_text}]


def _reject_nul(text: str) -> None:
    index = text.find("\x00")
    if index >= 0:
        raise CollectdParseError(text.count("\n", 0, index) + 1, "NUL byte in body")


def _putval_line(line_no: int, line: str) -> list[CollectdValue]:
    try:
        return _putval_records(_split_fields(line))
    except _Malformed as exc:
        raise CollectdParseError(line_no, str(exc)) from None


def _split_fields(line: str) -> list[str]:
    fields: list[str] = []
    pos = 0
    while pos < len(line):
        match = _FIELD.match(line, pos)
        if match is None:
            raise _Malformed("unbalanced or misplaced double quote")
        fields.append(match[1])
        pos = match.end()
    return fields


def _putval_records(fields: list[str]) -> list[CollectdValue]:
    if fields[0].upper() != "PUTVAL":
        raise _Malformed("not a PUTVAL command")
    if len(fields) < 2:
        raise _Malformed("PUTVAL needs an identifier")
    host, plugin_instance, type_instance = _identifier(_unquote(fields[1]))
    records: list[CollectdValue] = []
    interval: float | None = None
    for field in fields[2:]:
        if "=" in field:
            interval = _apply_option(field, interval)
            continue
        if not _VALUE_LIST.fullmatch(field):
            raise _Malformed("value list must be time:value[:value...]")
        records.append(
            CollectdValue(
                host=host,
                plugin_instance=plugin_instance,
                type_instance=type_instance,
                interval=interval,
                value=field,
            )
        )
    if not records:
        raise _Malformed("PUTVAL needs a value list")
    return records


def _identifier(identifier: str) -> tuple[str, str, str]:
    parts = identifier.split("/", 2)
    if len(parts) != 3 or not all(part.split("-", 1)[0] for part in parts[1:]) or not parts[0]:
        raise _Malformed("identifier must be host/plugin[-instance]/type[-instance]")
    return parts[0], parts[1], parts[2]


def _apply_option(field: str, interval: float | None) -> float | None:
    key, _, raw = field.partition("=")
    if key.lower() != "interval":
        return interval
    value = _unquote(raw)
    if not _INTERVAL.fullmatch(value) or not math.isfinite(float(value)):
        raise _Malformed("interval must be a number of seconds")
    return float(value)


def _unquote(field: str) -> str:
    if field.startswith('"'):
        return _ESCAPE.sub(r"\1", field[1:-1])
    return field


def _header(line_no: int, line: str) -> dict[str, str]:
    match = _HEADER.fullmatch(line.strip())
    if match is None:
        raise CollectdParseError(line_no, "header lines must be 'Key: value'")
    return {match[1].lower(): match[2].strip()}


def _decode(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise CollectdParseError(0, "body is not UTF-8") from None


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _load_json(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise CollectdParseError(exc.lineno, f"invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # NaN literal, huge integer, deep nesting
        raise CollectdParseError(0, f"invalid JSON: {type(exc).__name__}") from None


def _is_name(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_value_list(value: object) -> bool:
    return isinstance(value, list) and all(v is None or _is_number(v) for v in value)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_Check = Callable[[object], bool]
_REQUIRED: dict[str, _Check] = {
    "host": _is_name,
    "plugin": _is_name,
    "type": _is_name,
    "values": _is_value_list,
}
_OPTIONAL: dict[str, _Check] = {
    "plugin_instance": _is_str,
    "type_instance": _is_str,
    "time": _is_number,
    "interval": _is_number,
    "dstypes": _is_str_list,
    "dsnames": _is_str_list,
}


def _check_json_value(index: int, item: object) -> None:
    if not isinstance(item, dict):
        raise CollectdParseError(0, f"item {index} is not an object")
    for key, check in _REQUIRED.items():
        if key not in item or not check(item[key]):
            raise CollectdParseError(0, f"item {index}: missing or invalid {key!r}")
    for key, check in _OPTIONAL.items():
        if key in item and not check(item[key]):
            raise CollectdParseError(0, f"item {index}: invalid {key!r}")
