"""Syslog message parsing and TCP framing (SPEC §5). Pure: no I/O, never raises on input.

How this works:

* :func:`parse_line` reads the ``<PRI>`` prefix (facility = PRI // 8, severity = PRI % 8,
  named from the two tables below), then tries the header parsers in order: RFC 5424
  (``VERSION TIMESTAMP HOSTNAME ...``, ``-`` meaning absent), then RFC 3164
  (``Mmm dd hh:mm:ss HOSTNAME TAG: ...``, also with an RFC 3339 timestamp as rsyslog
  forwards it). A message with no header (Python's ``SysLogHandler`` sends ``<14>text``)
  keeps host and tstamp None; a message with no valid PRI keeps everything None. The
  timestamp is returned as sent, not normalised; the listener may fall back to the sender
  address and the receive time when these are None.
* :class:`SyslogFramer` is a byte-at-a-time state machine with one method per state (a table,
  not an if-chain). At each frame start it looks at the first byte: a non-zero digit may begin
  an RFC 6587 octet count (``<len> <msg>``); digits followed by anything but a space, or any
  other first byte, mean a line ended by LF or NUL. It copies at most ``max_line`` bytes into
  its buffer and skips the rest of an oversized frame without storing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypedDict

__all__ = [
    "FACILITIES",
    "SEVERITIES",
    "SyslogFramer",
    "SyslogRecord",
    "parse_datagram",
    "parse_line",
]

# RFC 5424 §6.2.1 codes 0-23, named as util-linux logger(1) and glibc name them; codes 13-15
# have no standard keyword, so these follow logger(1): security, console, solaris-cron.
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


class SyslogRecord(TypedDict):
    """One syslog message as queued in ``syslogd:<sender ip>`` (SPEC §5)."""

    line: str  # the message as received, minus trailing NUL/CR/LF
    host: str | None  # HOSTNAME from the header
    tstamp: str | None  # TIMESTAMP from the header, as sent
    facility: str | None  # a FACILITIES name, None when PRI is missing or > 191
    severity: str | None  # a SEVERITIES name, None when PRI is missing or > 191


_TRAILER = "\x00\r\n"
_PRI = re.compile(r"<([0-9]{1,3})>")
_ISO_TS = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_BSD_TS = rf"(?:{_MONTHS}) [ 0-9][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}"
_RFC5424 = re.compile(rf"[1-9][0-9]{{0,2}} (-|{_ISO_TS}) ([!-~]{{1,255}})(?: |$)", re.ASCII)
_RFC3164 = re.compile(rf"({_BSD_TS}(?:\.[0-9]+)?|{_ISO_TS})(?: +(\S+))?(?:\s|$)", re.ASCII)


def parse_line(line: bytes | str) -> SyslogRecord:
    """Parse one syslog message (RFC 5424, RFC 3164 or bare ``<PRI>text``); never raises."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.rstrip(_TRAILER)
    record = SyslogRecord(line=text, host=None, tstamp=None, facility=None, severity=None)
    pri = _PRI.match(text)
    if pri is None or int(pri[1]) > 191:
        return record
    record["facility"] = FACILITIES[int(pri[1]) >> 3]
    record["severity"] = SEVERITIES[int(pri[1]) & 7]
    record["tstamp"], record["host"] = _header(text[pri.end() :])
    return record


def parse_datagram(data: bytes) -> list[SyslogRecord]:
    """Parse a UDP datagram: one message, or several when LF-separated lines each start with
    a ``<PRI>``; lines without one stay part of the message before (a multi-line traceback).
    An empty datagram gives ``[]``."""
    parts = _DATAGRAM_SPLIT.split(data.rstrip(_TRAILER.encode()))
    return [parse_line(part) for part in parts if part.rstrip(_TRAILER.encode())]


_DATAGRAM_SPLIT = re.compile(rb"\r?\n(?=<[0-9]{1,3}>)")


def _rfc5424_header(rest: str) -> tuple[str | None, str | None] | None:
    match = _RFC5424.match(rest)
    if match is None:
        return None
    return _nil(match[1]), _nil(match[2])


def _rfc3164_header(rest: str) -> tuple[str | None, str | None] | None:
    match = _RFC3164.match(rest)
    if match is None:
        return None
    return match[1], _hostname(match[2])


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _hostname(token: str | None) -> str | None:
    # RFC 3164 senders may omit HOSTNAME; a token that looks like a TAG ("su:", "cron[12]")
    # is not a host.
    if token is None or token.endswith(":") or "[" in token:
        return None
    return token


_HEADER_PARSERS = (_rfc5424_header, _rfc3164_header)


def _header(rest: str) -> tuple[str | None, str | None]:
    for parse in _HEADER_PARSERS:
        found = parse(rest)
        if found is not None:
            return found
    return None, None


_TERMINATOR = re.compile(rb"[\n\x00]")
_MAX_DIGITS = 9  # an octet count longer than this is treated as the start of a plain line
_NONZERO_DIGITS = b"123456789"
_SPACE = 0x20


class SyslogFramer:
    """Incremental TCP framer: feed it bytes as they arrive, get complete frames back.

    Frames are newline framing (ended by LF or NUL, trailing CRs stripped, empty lines
    dropped) or RFC 6587 octet counting (``<len> <msg>``), detected per frame. A frame longer
    than ``max_line`` is cut to its first ``max_line`` bytes and the rest is skipped; the
    internal buffer never holds more than ``max(max_line, 9)`` bytes.
    """

    def __init__(self, max_line: int = 8192) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max_line = max_line
        self._buf = bytearray()
        self._remaining = 0  # octet counting: bytes of the current frame not yet consumed
        self._keep = 0  # octet counting: bytes of the current frame to emit
        self._state: Callable[[bytes, int, list[bytes]], int] = self._frame_start

    @property
    def buffered(self) -> int:
        """How many bytes of a partial frame are held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data`` and return the frames it completed, in order."""
        frames: list[bytes] = []
        pos = 0
        while pos < len(data):
            pos = self._state(data, pos, frames)
        return frames

    def flush(self) -> list[bytes]:
        """Return the partial frame left at end of stream (if any) and reset."""
        frame = bytes(self._buf[: self._max_line])
        if self._state != self._octets:
            frame = frame.rstrip(b"\r")
        self._buf.clear()
        self._state = self._frame_start
        return [frame] if frame else []

    # Each state takes (data, pos, frames), consumes from pos, returns the new pos.

    def _frame_start(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        self._state = self._count if data[pos] in _NONZERO_DIGITS else self._line
        return pos

    def _count(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        byte = data[pos]
        if byte == _SPACE:
            self._remaining = int(self._buf)
            self._keep = min(self._remaining, self._max_line)
            self._buf.clear()
            self._state = self._octets
            return pos + 1
        if 0x30 <= byte <= 0x39 and len(self._buf) < _MAX_DIGITS:
            self._buf.append(byte)
            return pos + 1
        self._state = self._line  # not an octet count: the digits start a plain line
        return pos

    def _octets(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        take = min(self._keep - len(self._buf), len(data) - pos)
        self._buf += data[pos : pos + take]
        if len(self._buf) == self._keep:
            frames.append(bytes(self._buf))
            self._buf.clear()
            self._remaining -= self._keep
            self._state = self._skip_octets if self._remaining else self._frame_start
        return pos + take

    def _skip_octets(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        skip = min(self._remaining, len(data) - pos)
        self._remaining -= skip
        if not self._remaining:
            self._state = self._frame_start
        return pos + skip

    def _line(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        room = max(self._max_line - len(self._buf), 0)
        end = min(len(data), pos + room + 1)
        terminator = _TERMINATOR.search(data, pos, end)
        if terminator is not None:
            self._buf += data[pos : terminator.start()]
            self._end_line(frames, self._frame_start)
            return terminator.end()
        if end - pos <= room:  # out of data and the line still fits: wait for more
            self._buf += data[pos:end]
            return end
        self._buf += data[pos : pos + room]
        self._end_line(frames, self._skip_line)
        return pos + room

    def _skip_line(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        terminator = _TERMINATOR.search(data, pos)
        if terminator is None:
            return len(data)
        self._state = self._frame_start
        return terminator.end()

    def _end_line(
        self, frames: list[bytes], next_state: Callable[[bytes, int, list[bytes]], int]
    ) -> None:
        frame = bytes(self._buf[: self._max_line]).rstrip(b"\r")
        self._buf.clear()
        self._state = next_state
        if frame:
            frames.append(frame)
