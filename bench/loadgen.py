"""wrk as the load generator: install it, run it with a Lua script, parse what it prints.

Every run appends ``status.lua`` to the endpoint's script, so each result carries the count of
responses per HTTP status (wrk itself only counts non-2xx/3xx, which would hide a 204 from an
empty queue) and wrk's exact p50/p99 in microseconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
STATUS_SCRIPT = BENCH_DIR / "status.lua"
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True, slots=True)
class Load:
    """How hard wrk pushes: threads, open connections, seconds."""

    threads: int
    connections: int
    duration: int  # whole seconds: wrk takes no fractions


@dataclass(slots=True)
class WrkResult:
    """One wrk run, parsed."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    output: str = ""

    def unexpected(self, expected: int = 200) -> int:
        """Responses with another status than ``expected``."""
        return sum(n for status, n in self.statuses.items() if status != expected)


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if found is None:  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk could not be installed")
    return found


def wrk_version(wrk: str) -> str:
    """``wrk 4.1.0 [epoll] ...`` → ``4.1.0 [epoll]``."""
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+ \[\w+\])", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def _script(endpoint_script: str | None, folder: Path) -> Path:
    """The endpoint's script with ``status.lua`` appended, written into ``folder``."""
    name = endpoint_script or "get.lua"
    body = (BENCH_DIR / endpoint_script).read_text() if endpoint_script else ""
    path = folder / name
    path.write_text(body + "\n" + STATUS_SCRIPT.read_text())
    return path


def run_wrk(
    wrk: str, url: str, load: Load, script: str | None, env: Mapping[str, str] | None = None
) -> WrkResult:
    """Run wrk once against ``url`` with the named bench/*.lua script (None: a plain GET)."""
    with tempfile.TemporaryDirectory(prefix="restmq-bench-") as folder:
        path = _script(script, Path(folder))
        command = [
            wrk,
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{load.duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(path),
            url,
        ]
        run_env = {**os.environ, **(env or {})}
        done = subprocess.run(command, capture_output=True, text=True, env=run_env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's summary and the lines printed by ``status.lua``."""
    p50, p99 = _percentiles(output)
    return WrkResult(
        requests_per_s=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=p50,
        p99_ms=p99,
        requests=int(_find(r"(\d+) requests in", output)),
        statuses={int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)},
        socket_errors=_socket_errors(output),
        output=output,
    )


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk output has no match for {pattern!r}:\n{text}")
    return match.group(1)


def _percentiles(output: str) -> tuple[float, float]:
    """p50/p99 in ms: the exact figures from status.lua, else the ``--latency`` table."""
    exact = re.search(r"^latency_us (\d+) (\d+)$", output, re.M)
    if exact:
        return int(exact.group(1)) / 1000, int(exact.group(2)) / 1000
    return _table_ms("50", output), _table_ms("99", output)


def _table_ms(percent: str, output: str) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)$", output, re.M)
    if match is None:
        raise ValueError(f"wrk output has no {percent}% latency:\n{output}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def _socket_errors(output: str) -> int:
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return sum(int(n) for n in match.groups()) if match else 0
