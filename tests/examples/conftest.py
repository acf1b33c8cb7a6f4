"""Running the scripts of ``examples/`` as real processes against a real broker.

The examples are what a user runs, so they are started the way a user starts them
(``python examples/<dir>/<script>.py ...``) and talk to a ``restmq serve`` process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The examples are what is under test here, not the storage: one backend is enough.
ONE_BACKEND = pytest.mark.parametrize("backend", ["valkey"], indirect=True)


def start_example(script: str, *args: str | Path) -> subprocess.Popen[str]:
    """Start ``examples/<script>`` with ``args``; its output is captured as text."""
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Wait for the example to exit (it must exit 0) and return what it printed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args} did not finish: {out[-2000:]} {err[-2000:]}") from None
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {err[-3000:]}"
    return out
