"""examples/websocket-page in headless Chromium, opened as a file against a real broker: it
connects over WebSocket, shows what is posted to its queue, and sends commands on the socket."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.http_support import Served
from tests.web.conftest import Tab

PAGE = Path(__file__).resolve().parents[2] / "examples" / "websocket-page" / "index.html"
pytestmark = pytest.mark.asyncio(loop_scope="module")
EXTERNAL = re.compile(r"""(src|href)=["']?(https?:)?//|url\(["']?(https?:)?//|@import""")


async def _open(tab: Tab, served: Served, queue: str) -> None:
    from playwright.async_api import expect

    query = urlencode({"broker": served.broker.url, "queue": queue, "autoconnect": "1"})
    await tab.page.goto(f"{PAGE.as_uri()}?{query}")
    await expect(tab.page.locator("#status")).to_have_attribute("data-state", "open")


async def _consumers(http: aiohttp.ClientSession, served: Served, queue: str) -> int:
    async with http.get(f"{served.broker.url}/stats/{queue}") as response:
        return int(json.loads(await response.text())["consumers"])


async def test_the_page_loads_nothing_from_elsewhere() -> None:
    assert not EXTERNAL.search(PAGE.read_text())


async def test_the_page_shows_each_message_posted_to_its_queue(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = f"page-{uuid.uuid4().hex[:8]}"
    await _open(tab, served, queue)
    assert await _consumers(http, served, queue) == 1
    for value in ("hello <b>not bold</b>", '{"temp": 21.5}'):
        async with http.post(f"{served.broker.url}/q/{queue}", data={"value": value}) as r:
            assert r.status == 200
    items = tab.page.locator("#messages li")
    await expect(items).to_have_count(2, timeout=2000)
    await expect(items.nth(0).locator(".key")).to_have_text(f"{queue}:2")
    await expect(items.nth(0).locator("pre")).to_have_text('{\n  "temp": 21.5\n}')
    await expect(items.nth(1).locator("pre")).to_have_text("hello <b>not bold</b>")
    assert await tab.page.locator("#messages b").count() == 0  # shown as text, not markup
    assert tab.errors == []


async def test_the_page_adds_a_message_with_a_command_on_its_socket(
    tab: Tab, served: Served
) -> None:
    from playwright.async_api import expect

    queue = f"page-{uuid.uuid4().hex[:8]}"
    await _open(tab, served, queue)
    await tab.page.locator("#value").fill("from the page")
    await tab.page.locator("#send button").click()
    keys = tab.page.locator("#messages li .key")
    await expect(keys).to_have_count(2, timeout=2000)  # the answer, and the delivery
    assert sorted(await keys.all_text_contents()) == sorted(["sent", f"{queue}:1"])
    delivered = tab.page.locator("#messages li:not(.note) pre")
    await expect(delivered).to_have_text("from the page")
    assert tab.errors == []
