"""Fixtures for the adapter tests: the store on the backend, real ``restmq syslogd`` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from restmq.engine.connection import open_storage, prepare
from restmq.engine.store import QueueStore
from tests.adapters.daemons import SyslogDaemon, storage_args, tcp_accepts
from tests.conftest import Backend
from tests.helpers.broker import free_port


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[QueueStore]:
    """The queue store on the test's backend and key prefix, as the daemons see it."""
    storage = open_storage(backend.url, backend.prefix, 4)
    await prepare(storage)
    yield storage.store
    await storage.close()


@pytest.fixture
def syslogd_factory(tmp_path: Path, backend: Backend) -> Iterator[Callable[..., SyslogDaemon]]:
    """Start ``restmq syslogd`` processes on free ports; each must stop with exit code 0."""
    started: list[SyslogDaemon] = []

    def start(*extra: str) -> SyslogDaemon:
        port = free_port()
        args = ["syslogd", "--syslog-port", str(port), *storage_args(backend.url, backend.prefix)]
        daemon = SyslogDaemon([*args, *extra], tmp_path / f"syslogd-{port}.log", port=port)
        started.append(daemon)
        daemon.start(lambda: tcp_accepts(port))
        return daemon

    yield start
    codes = [daemon.stop() for daemon in started]
    assert codes == [0] * len(codes), [daemon.log() for daemon in started]


@pytest.fixture
def syslogd(syslogd_factory: Callable[..., SyslogDaemon]) -> SyslogDaemon:
    """One ``restmq syslogd`` on the backend, with the default maximum line."""
    return syslogd_factory()
