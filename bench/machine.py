"""What the figures were measured on: the machine, the interpreter, the library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = ("aiohttp", "redis", "hiredis", "uvloop")


def cpu_model() -> str:
    """The ``model name`` line of /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_count() -> int:
    """The cores this process may run on (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision(repo: Path) -> str:
    """The commit under test, with ``+dirty`` when the work tree has changes (read-only git)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the figures."""
    return " / ".join(f"{n:.2f}" for n in os.getloadavg())


def describe(
    repo: Path, storage: str, wrk: str, load: str, label: str | None = None
) -> dict[str, str]:
    """The lines of the report's header, in order."""
    versions = package_versions()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores (nproc)": str(cpu_count()),
        "CPU": cpu_model(),
        "kernel": platform.release(),
        "load average at start (1/5/15 min)": load,
        "Python": platform.python_version(),
        "aiohttp": versions["aiohttp"],
        "redis-py": f"{versions['redis']} (hiredis {versions['hiredis']})",
        "uvloop": versions["uvloop"],
        "storage": storage,
        "wrk": wrk,
        "restmq": f"{label or git_revision(repo)} ({repo})",
    }
