"""Framing of streamed messages: comet chunks, Server-Sent Events, WebSocket text frames.

Pure functions: a message (key and value) in, the bytes or text to write out.
"""

from __future__ import annotations

import json

COMET_HEARTBEAT = b"\r\n"
SSE_HEARTBEAT = b": heartbeat\n\n"


def message_json(key: str, value: str) -> str:
    """The JSON of a streamed message: ``{"key": "q:1", "value": "v"}``."""
    return json.dumps({"key": key, "value": value}, ensure_ascii=False)


def comet_chunk(key: str, value: str, callback: str | None = None) -> bytes:
    """One comet chunk: the JSON line, or ``callback(<json>);`` with JSONP."""
    body = message_json(key, value)
    if callback:
        body = f"{callback}({body});"
    return (body + "\r\n").encode("utf-8")


def sse_event(key: str, value: str) -> bytes:
    """One SSE event. The JSON never holds a raw newline, so one ``data:`` line suffices."""
    return f"id: {key}\ndata: {message_json(key, value)}\n\n".encode()


def ws_text(key: str, value: str) -> str:
    """One WebSocket text frame's payload (no ``\\r\\n``)."""
    return message_json(key, value)
