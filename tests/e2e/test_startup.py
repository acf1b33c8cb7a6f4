"""What a user trips on when starting ``restmq serve``: each mistake is one clear line on
stderr and a non-zero exit, never a traceback; and the open-files limit is raised at start.

Every test runs the real ``restmq serve`` command in a child process.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.broker import Broker, free_port
from tests.helpers.wait import wait_until

START_TIMEOUT = 30


def _serve(
    args: Sequence[str], env: dict[str, str] | None = None, wrapper: Sequence[str] = ()
) -> tuple[int, str]:
    """Run ``restmq serve`` until it exits by itself; its exit code and its stderr."""
    done = subprocess.run(
        [*wrapper, sys.executable, "-m", "restmq", "serve", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=START_TIMEOUT,
        check=False,
    )
    return done.returncode, done.stderr.decode(errors="replace")


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("restmq: "), stderr
    return lines[0]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_and_starts_nothing(
    tmp_path: Path, listening: int, workers: str
) -> None:
    data = tmp_path / "data"
    args = ["--port", str(listening), "--workers", workers, "--data-dir", str(data)]
    code, stderr = _serve(args)
    assert code == 1
    line = _one_line(stderr)
    assert f"cannot listen on 127.0.0.1:{listening}: address already in use" in line
    assert "--port" in line
    assert not data.exists()  # checked before the embedded Valkey was started


def test_a_syslog_port_in_use_is_one_line(tmp_path: Path, listening: int) -> None:
    args = ["--port", str(free_port()), "--syslogd", "--syslog-port", str(listening),
            "--data-dir", str(tmp_path / "data")]  # fmt: skip
    code, stderr = _serve(args)
    assert code == 1
    assert "--syslog-port" in _one_line(stderr)


def _without_root_powers() -> list[str]:
    """A command prefix that runs a root process without the power to ignore file modes
    (as root the test would otherwise write anywhere); empty when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")  # util-linux
    if setpriv is None:
        reason = "running as root and no setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o555)  # exists, readable, not writable
    wrapper = _without_root_powers()
    code, stderr = _serve(["--port", str(free_port()), "--data-dir", str(data)], wrapper=wrapper)
    assert code == 1
    line = _one_line(stderr)
    assert f"cannot use the data directory {data}" in line
    assert "--data-dir" in line
    assert not (data / "valkey.sock").exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_invalid_log_level_is_one_line(tmp_path: Path, how: str) -> None:
    args = ["--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    env = {}
    if how == "flag":
        args += ["--log-level", "verbose"]
    else:
        env["RESTMQ_LOG_LEVEL"] = "verbose"
    code, stderr = _serve(args, env)
    assert code == 2
    line = _one_line(stderr)
    assert "invalid log level 'verbose'" in line
    assert "debug, info, warning, error" in line
    assert not (tmp_path / "data").exists()


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = re.split(r"\s{2,}", line)[1:3]
            return int(soft), int(hard)
    raise AssertionError("no open files limit in /proc")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits")
def test_the_open_files_soft_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard open-files limit ({hard}) leaves nothing to raise")
    port = free_port()
    broker = Broker(args=[], port=port, log_path=tmp_path / "broker.log")
    log = (tmp_path / "broker.log").open("ab")
    # The shell lowers the soft limit, then becomes the broker (same pid).
    broker.proc = subprocess.Popen(
        ["sh", "-c", 'ulimit -Sn 256 && exec "$0" "$@"', sys.executable, "-m", "restmq",
         "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--log-level", "debug"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        wait_until(lambda: "listening on" in broker.log(), START_TIMEOUT, "the broker listens")
        soft, hard_seen = _open_files_limits(broker.proc.pid)
        assert soft == hard_seen and soft > 256, (soft, hard_seen)
        assert f"open files limit raised from 256 to {soft}" in broker.log()
    finally:
        assert broker.stop() == 0
