"""The fixtures of the access-control tests: storage on the test's backend, and brokers
started with an ACL file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from restmq.engine.connection import Storage, open_storage
from tests.acl.brokers import Setup
from tests.conftest import Backend
from tests.helpers.broker import Broker


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = open_storage(backend.url, backend.prefix, 4)
    yield opened
    await opened.close()


@pytest.fixture
def acl_broker(
    tmp_path: Path, broker_factory: Callable[..., Broker], storage: Storage, backend: Backend
) -> Callable[[str], Setup]:
    """Start a broker whose ACL file holds ``text``."""

    def start(text: str) -> Setup:
        path = tmp_path / "acl.conf"
        path.write_text(text)
        return Setup(broker_factory("--acl", str(path)), path, storage, backend)

    return start
