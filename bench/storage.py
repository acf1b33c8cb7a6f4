"""The storage baseline: ``redis-benchmark`` against the broker's Redis, and its version.

redis-benchmark writes the keys ``key:__rand_int__`` and ``mylist`` in the URL's database; the
ones it created are deleted afterwards (``mylist`` ends empty after the RPOPs anyway).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis

BENCHMARK_KEYS = ("key:__rand_int__", "mylist")


@dataclass(frozen=True, slots=True)
class StorageResult:
    """One redis-benchmark line: a command at a pipeline depth."""

    command: str
    pipeline: int
    requests_per_s: float
    p50_ms: float | None


def server_info(url: str) -> tuple[str, int | None]:
    """``("redis 7.0.15", pid)`` or ``("valkey 8.0.1", pid)``, from INFO server."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
    finally:
        client.close()
    pid = info.get("process_id")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}", pid
    return f"redis {info.get('redis_version', 'unknown')}", pid


def _connection_args(url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return ["-s", parts.path]
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    db = parts.path.strip("/")
    if db:
        args += ["--dbnum", db]
    if parts.password:
        args += ["-a", unquote(parts.password), "--no-auth-warning"]
    return args


def run_redis_benchmark(url: str, requests: int, pipeline: int) -> list[StorageResult]:
    """``redis-benchmark -q -n <requests> -t set,lpush,rpop -P <pipeline>``, parsed."""
    tool = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if tool is None:
        print("redis-benchmark not found: storage baseline skipped", flush=True)
        return []
    command = [tool, *_connection_args(url), "-q", "-n", str(requests), "-t", "set,lpush,rpop"]
    command += ["-P", str(pipeline)]
    existing = _existing_keys(url)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        _delete_created(url, existing)
    return parse_redis_benchmark(done.stdout, pipeline)


def parse_redis_benchmark(output: str, pipeline: int) -> list[StorageResult]:
    """Lines like ``SET: 123.45 requests per second, p50=0.199 msec`` (-q; \\r-separated)."""
    found = re.findall(r"([A-Z]+): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", output)
    return [
        StorageResult(name, pipeline, float(rate), float(p50) if p50 else None)
        for name, rate, p50 in found
    ]


def _existing_keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url)
    try:
        return {key for key in BENCHMARK_KEYS if client.exists(key)}
    finally:
        client.close()


def _delete_created(url: str, existing: set[str]) -> None:
    created = [key for key in BENCHMARK_KEYS if key not in existing]
    client = redis.Redis.from_url(url)
    try:
        if created:
            client.delete(*created)
    finally:
        client.close()
