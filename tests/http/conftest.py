"""Shared by the HTTP test modules: one broker per module and backend, emptied per test.

Starting a broker costs about a second, so the modules here share one (per backend) and
each test starts from an empty keyspace (``served.wipe()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.http_support import BACKENDS, Served, no_5xx_session, serve_module


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with serve_module(request, tmp_path_factory) as served:
        yield served


@pytest.fixture
def backend(served: Served) -> Backend:
    """The module's backend, emptied for this test."""
    served.wipe()
    return served.backend


@pytest.fixture
def broker(served: Served, backend: Backend) -> Broker:
    return served.broker


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with no_5xx_session() as session:
        yield session
