"""One HTTP connection: a deadline on reading each request head, and JSON answers to the
requests aiohttp cannot parse (SPEC §3.8, §9).

How this works:
- aiohttp closes a connection that stays idle ``keepalive_timeout`` seconds, but has no
  deadline for the request head itself: a client that sends half a request line, or dribbles
  its headers one byte at a time (slowloris), holds its connection for as long as the
  keep-alive timer allows. ``Connection`` adds that deadline: a new connection, or a kept-alive
  one from the first byte of its next request, must complete its request line and headers
  within ``header_timeout`` seconds. Otherwise it is closed, with a 408 when part of a request
  came. Once a head is complete the timer is off: a handler may take its time (a long poll, a
  stream) and a body may come slowly.
- aiohttp answers its own parse errors (a bad request line, header, method, an over-long
  line) in text/plain, echoing the input, and logs a traceback for each. ``handle_error``
  answers them like every other error: ``{"error": "<short message>"}`` with the right 4xx,
  and one log line per ``LOG_EVERY`` seconds at most (a scanner sends thousands).
- ``Runner`` is aiohttp's AppRunner serving through ``Connection``: aiohttp's ``Server``
  builds its protocol objects from a fixed class, so the runner's server gets a subclass
  whose only change is that factory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)
from aiohttp.web_request import BaseRequest

from restmq.http.render import dumps, error

log = logging.getLogger("restmq.http")
LOG_EVERY = 60.0  # seconds between two log lines about requests that could not be parsed
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
_TIMEOUT_BODY = (dumps({"error": "request head not received in time"}) + "\r\n").encode()
TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)

# aiohttp's parse errors → (status, message); the first class that matches wins (subclasses
# first). The messages are ours: aiohttp's own quote the input.
_PARSE_ERRORS: list[tuple[type[BaseException], int, str]] = [
    (BadHttpMethod, 400, "invalid request method"),
    (BadStatusLine, 400, "invalid request line"),
    (InvalidURLError, 400, "invalid request target"),
    (InvalidHeader, 400, "invalid header"),
    (BadHttpMessage, 400, "malformed request"),
]
_TOO_MANY_HEADERS = "Too many headers received"  # aiohttp's message, not the client's input
_SERVER_ERRORS = {504: "outcome unknown"}


def describe(exc: BaseException | None, status: int, line_complete: bool) -> tuple[int, str]:
    """The status and message answering a request that failed with ``exc`` before (or
    outside) the application; ``line_complete`` tells an over-long request line (414) from an
    over-long header (431)."""
    if isinstance(exc, LineTooLong):
        return (431, "request header too long") if line_complete else (414, "request line too long")
    if isinstance(exc, BadHttpMessage) and exc.message == _TOO_MANY_HEADERS:
        return 431, "too many headers"
    for kind, code, message in _PARSE_ERRORS:
        if isinstance(exc, kind):
            return code, message
    if status >= 500:
        return status, _SERVER_ERRORS.get(status, "internal error")
    return status, "bad request"


class _Throttle:
    """Allows one event per ``every`` seconds and counts the ones it held back."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._next = 0.0
        self._held = 0

    def allow(self) -> int | None:
        """None when held back; else how many were held back since the last one allowed."""
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next = now + self._every
        return held


_parse_errors = _Throttle(LOG_EVERY)


class Connection(web.RequestHandler):
    """aiohttp's protocol for one connection, with a request-head deadline and JSON errors."""

    __slots__ = ("_head_started", "_head_timer", "_header_timeout", "_line_bytes", "_line_ended")

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False  # bytes of the next request head came
        self._line_ended = False  # ... its request line ended
        self._line_bytes = 0  # ... after this many bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # a new connection must send a whole request head in time

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        head = bool(data) and self._between_requests()
        if head:
            self._measure_line(data)
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a head is complete (or refused)
            self._disarm()
            self._head_started = False
        elif head:  # part of a head: its deadline runs (a whole one costs no timer)
            self._head_started = True
            if self._head_timer is None:
                self._arm()

    def _between_requests(self) -> bool:
        """True while the bytes that come belong to the head of the next request."""
        return not (
            self._request_in_progress or self._messages or self._upgraded
            or self._payload_parser is not None
        )

    def _measure_line(self, data: bytes) -> None:
        """Follow the length of the request line of the head ``data`` belongs to."""
        if not self._head_started:
            self._line_ended, self._line_bytes = False, 0
        if not self._line_ended:
            end = data.find(b"\n")
            self._line_bytes += len(data) if end < 0 else end
            self._line_ended = end >= 0

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self._loop.call_later(self._header_timeout, self._head_too_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        waiting = self._waiter is not None and not self._waiter.done()
        if not waiting or self.transport is None:
            return  # a request is being handled: the deadline was for its head only
        if self._head_started:
            self.transport.write(TIMEOUT_ANSWER)
        self.force_close()  # closes gracefully: the short answer is flushed first

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request aiohttp could not parse, or whose handler failed outside
        the application's error mapping: SPEC §3.8's JSON error, never the client's input."""
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            raise ConnectionError("response already started; cannot answer the error")
        line_complete = self._line_ended and self._line_bytes <= self.max_line_size
        code, text = describe(exc, status, line_complete)
        self._log_error(request, code, text, exc)
        response = error(code, text, NOSNIFF)
        response.force_close()
        return response

    def _log_error(
        self, request: BaseRequest, code: int, text: str, exc: BaseException | None
    ) -> None:
        if code >= 500:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            return
        held = _parse_errors.allow()
        if held is not None:
            log.warning(
                "refused a request that could not be parsed, from %s (%d %s); %d more "
                "since the last report (one line per %.0f s at most)",
                request.remote, code, text, held, LOG_EVERY,
            )


class _Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        return Connection(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """aiohttp's AppRunner whose connections are ``Connection``s (pass ``header_timeout``)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state; only the protocol factory differs
        return server
