"""Fixtures of the client tests: a real broker shared by the tests of one module, a sync and
an async client on it, and a thread that drains a sync stream.

Starting a broker takes a second or more, and most client tests only need one that works:
they share one per module and backend (valkey, redis), each test on its own queue, and the
module's keys are removed afterwards. Tests that need a broker of their own (other flags, a
fixed port, a restart) use ``broker_factory``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from restmq.client import AsyncClient, Client, Message
from tests.conftest import _local_redis_or_skip
from tests.helpers.broker import Broker, make_broker
from tests.helpers.wait import wait_until


def _storage_url(request: pytest.FixtureRequest, name: str) -> str:
    return request.getfixturevalue("valkey_url") if name == "valkey" else _local_redis_or_skip()


def _shared_broker(request: pytest.FixtureRequest, tmp: Path, name: str) -> Iterator[Broker]:
    url, prefix = _storage_url(request, name), f"rmqc-{uuid.uuid4().hex[:12]}:"
    broker = make_broker(tmp, url, prefix).start()
    yield broker
    broker.stop()
    storage = redis.Redis.from_url(url)
    keys = list(storage.scan_iter(match=prefix + "*", count=1000))
    if keys:
        storage.delete(*keys)
    storage.close()


@pytest.fixture(scope="module", params=["valkey", "redis"])
def shared_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """One broker per test module and backend."""
    yield from _shared_broker(request, tmp_path_factory.mktemp("broker"), request.param)


@pytest.fixture(scope="module")
def valkey_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """One broker per test module on the embedded Valkey (for the CLI's tests)."""
    yield from _shared_broker(request, tmp_path_factory.mktemp("broker"), "valkey")


@pytest.fixture
def queue() -> str:
    """A fresh queue name (the broker's key prefix is fresh too; this only reads better)."""
    return f"q-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(shared_broker: Broker) -> Iterator[Client]:
    with Client(shared_broker.url) as c:
        yield c


@pytest.fixture
async def aclient(shared_broker: Broker) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(shared_broker.url) as c:
        yield c


class Drain:
    """A thread that iterates a sync stream until it has ``expected`` messages."""

    def __init__(self, messages: Iterator[Message], expected: int) -> None:
        self.received: list[Message] = []
        self.expected = expected
        self.error: BaseException | None = None
        self._messages = messages
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for message in self._messages:
                self.received.append(message)
                if len(self.received) >= self.expected:
                    return
        except BaseException as exc:  # reported by wait_for
            self.error = exc

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Message]:
        wait_until(lambda: len(self.received) >= count or self.error is not None, timeout,
                   f"{count} streamed messages (got {len(self.received)})")
        if self.error is not None:
            raise self.error
        return self.received[:count]

    def join(self, timeout: float = 30.0) -> list[Message]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream ended late: {self.received}"
        if self.error is not None:
            raise self.error
        return self.received


def wait_consumers(client: Client, queue: str, count: int, timeout: float = 20.0) -> None:
    """Wait until the broker counts ``count`` streaming consumers of ``queue``."""
    wait_until(lambda: client.stats(queue).consumers == count, timeout,
               f"{count} consumers of {queue}")
