"""Streaming consumers without I/O: decoding the three framings, and the state that carries a
consumer across reconnections (the last key seen, the backoff before the next try).

``Client.stream`` and ``AsyncClient.stream`` open a connection, feed each line (comet, SSE)
or text frame (WebSocket) to the plan's decoder and yield what comes out; when the
connection drops they ask ``StreamPlan.pause`` how long to wait and connect again. For SSE the
reconnection sends ``Last-Event-ID`` with the last key seen, so the broker replays the
broadcast messages of its history window that this consumer missed (SPEC §3.4).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Literal

from restmq.client.calls import message_of, queue_path
from restmq.client.models import Message
from restmq.errors import (
    ClientError,
    OutcomeUnknown,
    RestMQError,
    StorageUnavailable,
    UnexpectedAnswer,
)
from restmq.protocol.names import check_queue

Via = Literal["sse", "comet", "ws"]
PATHS: dict[Via, str] = {"sse": "/sse/", "comet": "/c/", "ws": "/ws/"}
HEARTBEATS_PER_IDLE = 3  # comet heartbeats asked for within one idle timeout


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling up to
    ``maximum``; ``reset`` after a connection succeeds."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self) -> float:
        delay, self._next = self._next, min(self.maximum, self._next * self.factor)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next = self.initial


def retryable(error: RestMQError) -> bool:
    """A lost connection, an unavailable storage or a server error is worth another try;
    a refusal (bad queue name, access denied) is not."""
    if isinstance(error, ClientError | StorageUnavailable | OutcomeUnknown):
        return True
    return isinstance(error, UnexpectedAnswer) and error.status >= 500


class LineBuffer:
    """Text in, whole lines out, split at line feeds only (a carriage return before one is
    dropped).

    Not httpx's ``iter_lines``: it splits like ``str.splitlines``, also at U+2028, U+0085 and
    others that JSON leaves unescaped inside a value.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []

    def feed(self, text: str) -> list[str]:
        if "\n" not in text:
            self._parts.append(text)
            return []
        first, *rest = text.split("\n")
        lines = ["".join([*self._parts, first]), *rest[:-1]]
        self._parts = [rest[-1]] if rest[-1] else []
        return [line.removesuffix("\r") for line in lines]


class SSEDecoder:
    """Server-Sent Events: ``data:`` lines up to a blank line make an event; comments (the
    heartbeats) and the other fields are skipped (the key is in the data too)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self._lines = LineBuffer()
        self._data: list[str] = []

    def feed(self, text: str) -> list[Message]:
        found = (self._line(line) for line in self._lines.feed(text))
        return [message for message in found if message is not None]

    def _line(self, line: str) -> Message | None:
        if line == "":
            data, self._data = "\n".join(self._data), []
            return decode_json(self.queue, data) if data else None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None


class CometDecoder:
    """Comet: one JSON message per line; a blank line is a heartbeat."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self._lines = LineBuffer()

    def feed(self, text: str) -> list[Message]:
        found = (decode_json(self.queue, line) for line in self._lines.feed(text) if line)
        return [message for message in found if message is not None]


class FrameDecoder:
    """WebSocket: one JSON message per text frame."""

    def __init__(self, queue: str) -> None:
        self.queue = queue

    def feed(self, frame: str) -> list[Message]:
        message = decode_json(self.queue, frame)
        return [] if message is None else [message]


Decoder = SSEDecoder | CometDecoder | FrameDecoder
DECODERS: dict[Via, type[Decoder]] = {"sse": SSEDecoder, "comet": CometDecoder, "ws": FrameDecoder}


def decode_json(queue: str, text: str) -> Message | None:
    """A streamed ``{"key", "value"}``; a WebSocket answer to a command (no key) is None."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise UnexpectedAnswer(200, f"a streamed message is not JSON: {text[:80]!r}") from None
    if not isinstance(obj, dict) or "key" not in obj:
        return None
    return message_of(queue, obj)


@dataclass(slots=True)
class StreamPlan:
    """One streaming consumer across all its connections."""

    queue: str
    via: Via
    idle_timeout: float
    last_event_id: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    reconnect: bool = True

    def __post_init__(self) -> None:
        check_queue(self.queue)
        if self.via not in PATHS:
            raise ValueError(f"via must be one of {', '.join(PATHS)}, not {self.via!r}")

    def path(self) -> str:
        path = queue_path(PATHS[self.via], self.queue)
        if self.via == "comet":
            path += f"?heartbeat={self.idle_timeout / HEARTBEATS_PER_IDLE:g}"
        return path

    def headers(self) -> dict[str, str]:
        if self.via == "sse" and self.last_event_id:
            return {"Last-Event-ID": self.last_event_id}
        return {}

    def decoder(self) -> Decoder:
        """A fresh decoder for one connection."""
        return DECODERS[self.via](self.queue)

    def connected(self) -> None:
        self.backoff.reset()

    def seen(self, message: Message) -> None:
        self.last_event_id = message.key

    def pause(self, error: RestMQError | None) -> float | None:
        """Seconds to wait before the next connection, or None to stop: after a clean end
        without ``reconnect``; ``error`` is raised when it is not worth another try."""
        if error is not None and not (self.reconnect and retryable(error)):
            raise error
        if not self.reconnect:
            return None
        return self.backoff.delay()
