"""contrib/nginx.conf in front of two real daemons: comet, SSE and WebSocket consumers and
producers all go through a real nginx, and the delivery rules still hold across the daemons.

The test writes a minimal nginx.conf (pid, logs and temp files in its tmp dir) whose http
block includes a copy of contrib/nginx.conf with the upstream servers and the listen line
replaced, as docs/operations.md tells an operator to do.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from restmq.keys import Keys
from tests.conftest import Backend
from tests.helpers.broker import Broker, free_port
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.streams import Reader, key_number, start_reader
from tests.helpers.wait import async_wait_until, wait_until

CONF = Path(__file__).resolve().parents[2] / "contrib" / "nginx.conf"
UPSTREAM = re.compile(r"(upstream restmq \{.*?\})", re.S)
SERVER_LINE = re.compile(r"^(\s*)server \S+;$", re.M)
LISTEN_LINE = re.compile(r"^(\s*)listen 80;$", re.M)
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

# nginx is what is under test here, not the storage: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["valkey"], indirect=True)


@pytest.fixture
def nginx_binary() -> str:
    """The nginx binary; checked before any daemon is started."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but nginx is not installed (.ci/packages.txt lists nginx-light)")
    pytest.skip("nginx is not installed (apt-get install nginx-light)")


def site_config(daemons: list[Broker], port: int) -> str:
    """contrib/nginx.conf with its upstream servers and listen line replaced."""
    text = CONF.read_text()
    block = UPSTREAM.search(text)
    assert block, "contrib/nginx.conf has no `upstream restmq { ... }` block"
    servers = "\n".join(f"    server 127.0.0.1:{d.port};" for d in daemons)
    upstream, count = SERVER_LINE.subn("", block.group(1))
    assert count >= 2, "the upstream should list several daemons"
    upstream = upstream.replace("{", "{\n" + servers, 1)
    text = text.replace(block.group(1), upstream)
    text, listens = LISTEN_LINE.subn(rf"\g<1>listen 127.0.0.1:{port};", text)
    assert listens == 1
    return text


def main_config(tmp: Path, site: Path) -> str:
    temps = "\n".join(f"    {name}_temp_path {tmp / name};" for name in TEMP_PATHS)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the tmp dir
    return (
        f"{user}worker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
        f"http {{\n    access_log {tmp / 'access.log'};\n{temps}\n    include {site};\n}}\n"
    )


def _livez(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/livez", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def daemons(broker_factory: Callable[..., Broker]) -> list[Broker]:
    return [broker_factory("--presence-timeout", "2") for _ in range(2)]


@pytest.fixture
def nginx(nginx_binary: str, daemons: list[Broker], tmp_path: Path) -> Iterator[str]:
    """A real nginx (foreground) with contrib/nginx.conf in front of the daemons; its URL."""
    root = tmp_path / "nginx"
    root.mkdir()
    port = free_port()
    site = root / "restmq.conf"
    site.write_text(site_config(daemons, port))
    conf = root / "nginx.conf"
    conf.write_text(main_config(root, site))
    log = (root / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [nginx_binary, "-g", "daemon off;", "-c", str(conf), "-p", str(root), "-e",
         str(root / "error.log")], stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _running(proc, root) and _livez(url), 15, "nginx answers")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()


def _running(proc: subprocess.Popen[bytes], root: Path) -> bool:
    if proc.poll() is not None:
        errors = (root / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nginx exited {proc.returncode}: {errors}")
    return True


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _post(session: aiohttp.ClientSession, base: str, queue: str, value: str) -> str:
    async with session.post(f"{base}/q/{queue}", data={"value": value}) as response:
        assert response.status == 200, await response.text()
        return (await response.text()).strip()


async def _stats(session: aiohttp.ClientSession, base: str, queue: str) -> dict[str, int]:
    async with session.get(f"{base}/stats/{queue}") as response:
        assert response.status == 200
        stats: dict[str, int] = await response.json()
        return stats


async def _consumers_are(session: aiohttp.ClientSession, base: str, queue: str, n: int) -> bool:
    return (await _stats(session, base, queue))["consumers"] == n


async def _daemons_holding(redis: Redis, backend: Backend, queue: str) -> set[str]:
    """The daemons that hold streaming consumers of the queue (their presence entries)."""
    members = await redis.hkeys(Keys(backend.prefix).queue_key(queue, "consumers"))
    return {member.split("/")[0] for member in members}


async def _open(
    session: aiohttp.ClientSession, nginx: str, queue: str, kinds: list[str]
) -> list[Reader]:
    readers = [start_reader(session, nginx, kind, queue, f"{kind}-{i}")
               for i, kind in enumerate(kinds)]
    await async_wait_until(
        lambda: _consumers_are(session, nginx, queue, len(kinds)), 10, f"{len(kinds)} consumers"
    )
    return readers


async def test_comet_sse_and_websocket_get_every_broadcast_through_nginx_from_both_daemons(
    nginx: str, session: aiohttp.ClientSession, raw_redis: Redis, backend: Backend
) -> None:
    readers = await _open(session, nginx, "news", ["comet", "sse", "ws"] * 2)
    assert len(await _daemons_holding(raw_redis, backend, "news")) == 2
    keys = [await _post(session, nginx, "news", f"n{i}") for i in range(20)]
    for reader in readers:
        await reader.wait_for(20, timeout=10)
        assert reader.keys == keys, reader.name
        assert [value for _, value in reader.received] == [f"n{i}" for i in range(20)]
        await reader.stop()
    await assert_no_orphans(raw_redis, backend.prefix)


async def test_roundrobin_through_nginx_gives_each_message_to_one_consumer_once(
    nginx: str, session: aiohttp.ClientSession, raw_redis: Redis, backend: Backend
) -> None:
    async with session.post(f"{nginx}/p/jobs", data={"policy": "roundrobin"}) as response:
        assert response.status == 200
    readers = await _open(session, nginx, "jobs", ["comet", "sse", "ws", "comet"])
    assert len(await _daemons_holding(raw_redis, backend, "jobs")) == 2
    keys = [await _post(session, nginx, "jobs", f"j{i}") for i in range(40)]
    await async_wait_until(
        lambda: sum(len(r.received) for r in readers) == 40, 10, "40 deliveries"
    )
    counts = Counter(key for reader in readers for key in reader.keys)
    assert set(counts) == set(keys) and max(counts.values()) == 1
    for reader in readers:
        assert reader.received, f"{reader.name} got nothing"
        assert reader.keys == sorted(reader.keys, key=key_number)
        await reader.stop()


async def test_a_websocket_command_frame_is_answered_through_nginx(
    nginx: str, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(f"{nginx}/ws/chat") as ws:
        await ws.send_str(json.dumps({"cmd": "add", "queue": "notes", "value": "via ws"}))
        answer = json.loads((await ws.receive(timeout=10)).data)
    assert answer == {"queue": "notes", "value": "via ws", "key": "notes:1"}


async def test_a_request_body_above_nginx_default_limit_reaches_the_broker(
    nginx: str, session: aiohttp.ClientSession
) -> None:
    values = ["x" * 700_000, "y" * 700_000]  # 1.4 MB: over nginx's default 1 MiB
    body = io.BytesIO(json.dumps({"values": values}).encode())
    headers = {"Content-Type": "application/json"}
    async with session.post(f"{nginx}/q/bulk", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["keys"] == ["bulk:1", "bulk:2"]
    assert (await _stats(session, nginx, "bulk"))["len"] == 2
