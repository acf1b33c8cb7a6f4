"""`curl -N` consumes comet and SSE streams exactly as the README shows."""

from __future__ import annotations

import subprocess
import urllib.request

from tests.helpers.broker import Broker
from tests.helpers.wait import wait_until


def _post(broker: Broker, queue: str, value: str) -> None:
    body = f"value={value}".encode()
    with urllib.request.urlopen(f"{broker.url}/q/{queue}", data=body, timeout=5) as answer:
        assert answer.status == 200


def _stats(broker: Broker, queue: str) -> bytes:
    with urllib.request.urlopen(f"{broker.url}/stats/{queue}", timeout=5) as answer:
        return bytes(answer.read())


def _stream_with_curl(broker: Broker, path: str, queue: str, marker: bytes) -> bytes:
    """Run ``curl -N`` on a stream until ``marker`` arrives (or 10 s pass); its output."""
    with subprocess.Popen(
        ["curl", "-sN", "--max-time", "10", f"{broker.url}{path}{queue}"],
        stdout=subprocess.PIPE,
    ) as curl:
        wait_until(lambda: b'"consumers": 1' in _stats(broker, queue), 10, "curl connected")
        _post(broker, queue, "first")
        _post(broker, queue, "second")
        assert curl.stdout is not None
        out = b""
        while marker not in out:
            chunk = curl.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            out += chunk
        curl.terminate()
    return out


def test_curl_n_streams_comet_chunks(broker: Broker) -> None:
    out = _stream_with_curl(broker, "/c/", "curlc", b"curlc:2")
    assert out == (
        b'{"key": "curlc:1", "value": "first"}\r\n{"key": "curlc:2", "value": "second"}\r\n'
    )


def test_curl_n_streams_server_sent_events(broker: Broker) -> None:
    out = _stream_with_curl(broker, "/sse/", "curls", b"\"second\"}\n\n")
    assert out == (
        b'id: curls:1\ndata: {"key": "curls:1", "value": "first"}\n\n'
        b'id: curls:2\ndata: {"key": "curls:2", "value": "second"}\n\n'
    )
