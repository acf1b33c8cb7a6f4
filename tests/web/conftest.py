"""Fixtures for the web pages and the metrics: a real broker, and Debian's Chromium driven by
Playwright.

The browser tests need ``/usr/bin/chromium`` (the Debian package, listed in
``.ci/packages.txt``) and the ``playwright`` Python package, which drives that binary: no
browser is downloaded. Without either, they are skipped with the reason, except when
``CI=true``, where they fail. Every page's console errors and uncaught exceptions are
recorded, so a test can assert there were none. The browser is started once per module, so
the tests of a module run in one event loop (``pytestmark`` with ``loop_scope="module"``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio

from tests.http_support import Served, serve_module

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _require(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["valkey"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One broker for the module, on the embedded Valkey, in its own key namespace."""
    with serve_module(request, tmp_path_factory) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's), one per test module (each test gets its own context)."""
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    _require(
        importlib.util.find_spec("playwright") is not None,
        "the playwright package is missing (pip install -e '.[test]')",
    )
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """A browser page and every console error or uncaught exception it reported."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def record(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    """A page in a fresh browser context (no shared cookies or cache between tests)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    opened = Tab(page)
    page.on("console", opened.record)
    page.on("pageerror", lambda exc: opened.errors.append(f"page error: {exc}"))
    yield opened
    await context.close()
