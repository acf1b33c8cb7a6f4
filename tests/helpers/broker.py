"""Real broker processes for tests: started on a free port, stopped and reaped afterwards."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.wait import wait_until

# Under pytest-xdist each worker takes ports from its own block (below the kernel's
# ephemeral range, 32768+), so two workers never pick the same free port at once: a broker
# that lost such a race would fail to bind while its twin answered /livez in its place.
_PORT_BLOCK = 2000
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw10").removeprefix("gw") or 0)
_BASE = 10000 + (_WORKER % 11) * _PORT_BLOCK  # blocks end below 32000
_ports = itertools.count(os.getpid() % 500)


def free_port() -> int:
    """A port nobody listens on, from this test process's own block."""
    for _ in range(_PORT_BLOCK):
        port = _BASE + next(_ports) % _PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's block")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Broker:
    """A ``restmq serve`` child process."""

    args: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Broker:
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "restmq", "serve", "--port", str(self.port), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until(lambda: self._alive_or_fail() and _answers(self.url + "/livez"), timeout)
        return self

    def _alive_or_fail(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"broker exited {self.proc.returncode}: {self.log()}")
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

    def kill(self) -> None:
        """SIGKILL the broker process (its workers and Valkey see it die)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def make_broker(
    tmp: Path, redis_url: str | None, prefix: str, extra: Sequence[str] = (), port: int = 0
) -> Broker:
    args = ["--prefix", prefix, *extra]
    if redis_url:
        args += ["--redis-url", redis_url]
    port = port or free_port()
    return Broker(args=args, port=port, log_path=tmp / f"broker-{port}.log")
