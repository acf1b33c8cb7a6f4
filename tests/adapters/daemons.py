"""Real ``restmq`` adapter processes for tests, and a reader that drains a queue.

``Daemon`` runs ``python -m restmq <command> ...`` (``syslogd``, ``collectd``), waits for a
readiness condition and stops it with SIGTERM, returning the exit code. ``Inbox`` takes the
messages of one queue through the real store as they arrive and keeps them, decoded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restmq.engine.store import QueueStore
from tests.helpers.wait import async_wait_until, wait_until


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Daemon:
    """One ``python -m restmq`` child process."""

    args: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], timeout: float = 20.0) -> Daemon:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "restmq", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        wait_until(lambda: self.alive() and ready(), timeout, f"restmq {self.args[0]} ready")
        return self

    def alive(self) -> bool:
        """True while running; raises with the log when the process has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"restmq exited {self.proc.returncode}: {self.log()}")
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@dataclass
class SyslogDaemon(Daemon):
    port: int = 0


def storage_args(url: str, prefix: str, extra: Sequence[str] = ()) -> list[str]:
    return ["--redis-url", url, "--prefix", prefix, *extra]


@dataclass
class Inbox:
    """The messages taken from one queue so far, JSON-decoded."""

    store: QueueStore
    queue: str
    messages: list[Any] = field(default_factory=list)

    async def drain(self) -> list[Any]:
        taken = await self.store.take(self.queue, 1000)
        self.messages += [json.loads(message.value) for message in taken]
        return self.messages

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Any]:
        """Wait until at least ``count`` messages were taken; returns all of them."""

        async def enough() -> bool:
            return len(await self.drain()) >= count

        await async_wait_until(enough, timeout, f"{count} messages in {self.queue}")
        return self.messages

    async def wait_for_line(self, text: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for the syslog message whose line ends with ``text``; returns it."""

        async def seen() -> bool:
            return any(m["line"].endswith(text) for m in await self.drain())

        await async_wait_until(seen, timeout, f"line {text!r} in {self.queue}")
        found: dict[str, Any] = next(m for m in self.messages if m["line"].endswith(text))
        return found
