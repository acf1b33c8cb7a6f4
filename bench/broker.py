"""One ``restmq serve`` process under test: start it on a free port, wait for it, stop it.

With an external Redis the broker gets a unique ``--prefix`` and its keys are deleted when it
stops; with ``embedded`` it runs its own Valkey in a temporary ``--data-dir`` that is removed.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis
from cpu import children

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
EMBEDDED_URL = re.compile(r"embedded valkey running on (\S+)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Broker:
    """``python -m restmq serve`` with N workers; use as a context manager."""

    workers: int
    redis_url: str | None  # None: the broker's embedded Valkey
    source: Path = REPO  # the checkout whose ``restmq`` package is run
    port: int = field(default_factory=free_port)
    prefix: str = field(default_factory=lambda: f"bench-{secrets.token_hex(4)}:")
    storage_url: str = ""
    _proc: subprocess.Popen[bytes] | None = None
    _folder: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> Broker:
        self._folder = Path(tempfile.mkdtemp(prefix="restmq-bench-"))
        log = (self._folder / "broker.log").open("wb")
        self._proc = subprocess.Popen(self._command(), cwd=self.source, stdout=log, stderr=log)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.storage_url = self.redis_url or self._embedded_url()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()
        if self.redis_url:
            delete_prefix(self.redis_url, self.prefix)
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "restmq",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--prefix",
            self.prefix,
            "--log-level",
            "info",
        ]
        if self.redis_url:
            return [*command, "--redis-url", self.redis_url]
        assert self._folder is not None
        return [*command, "--data-dir", str(self._folder / "data")]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"the broker exited at start:\n{self.log_text()}")
            if self._all_workers_up():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the broker did not answer in {START_TIMEOUT:g}s:\n{self.log_text()}")

    def _all_workers_up(self) -> bool:
        """/livez answers and every worker has said it is listening."""
        try:
            with urllib.request.urlopen(self.base + "/livez", timeout=1) as response:
                answered = response.status == 200
        except (urllib.error.URLError, OSError):
            return False
        return answered and self.log_text().count("listening on") >= self.workers

    def _embedded_url(self) -> str:
        match = EMBEDDED_URL.search(self.log_text())
        if match is None:
            raise RuntimeError(f"no embedded Valkey URL in the broker's log:\n{self.log_text()}")
        return match.group(1)

    def _stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def log_text(self) -> str:
        if self._folder is None:
            return ""
        path = self._folder / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The processes that serve HTTP: the serve process itself with one worker."""
        if self.workers == 1:
            return [self.pid]
        return [pid for pid in children(self.pid) if _is_spawned_worker(pid)]

    def all_pids(self) -> list[int]:
        """The serve process and its children (the workers, with more than one)."""
        return [self.pid, *children(self.pid)]

    def queue_length(self, queue: str) -> int:
        """The number of messages waiting in ``queue`` (from ``GET /stats/<queue>``)."""
        with urllib.request.urlopen(f"{self.base}/stats/{queue}", timeout=10) as response:
            length: int = json.load(response)["len"]
            return length


def _is_spawned_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline


def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; the count deleted."""
    client = redis.Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
    return deleted


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
