"""The dashboard pages through many queues (issue 9): it shows one page of the paged
``/events/stats`` feed at a time, and Next / Previous move between pages. Headless Chromium
against a real broker (see ``conftest.py``)."""

from __future__ import annotations

import pytest
import redis

from restmq.keys import Keys
from tests.http_support import Served
from tests.web.conftest import Tab

pytestmark = pytest.mark.asyncio(loop_scope="module")
PAGE_SIZE = 500  # dashboard.js
QUEUES = PAGE_SIZE + 3
DASH = "\u2013"  # the page range's en dash


def _name(i: int) -> str:
    return f"page-{i:04d}"


def _create(served: Served) -> None:
    """The queues, each with one message, written straight in the broker's layout."""
    client = redis.Redis.from_url(served.backend.url)
    keys = Keys(served.backend.prefix)
    try:
        with client.pipeline(transaction=False) as pipe:
            for i in range(QUEUES):
                name = _name(i)
                pipe.set(keys.queue_key(name, "seq"), 1)
                pipe.hset(keys.queue_key(name, "vals"), "1", "v")
                pipe.lpush(keys.queue_key(name, "ready"), "1")
                pipe.hset(keys.queue_key(name, "meta"), "listed", 1)
                pipe.sadd(keys.registry, name)
            pipe.execute()
    finally:
        client.close()


async def test_the_dashboard_pages_through_the_queues(tab: Tab, served: Served) -> None:
    from playwright.async_api import expect

    served.wipe()
    _create(served)
    rows = tab.page.locator("#queues tbody tr")
    await tab.page.goto(f"{served.broker.url}/static/index.html")
    await expect(tab.page.locator("#connection")).to_have_text("live")

    await expect(rows).to_have_count(PAGE_SIZE)
    await expect(tab.page.locator("#count")).to_have_text(f"{QUEUES:,}")
    await expect(tab.page.locator("#page")).to_have_text(f"1{DASH}{PAGE_SIZE}")
    await expect(rows.first).to_have_attribute("data-queue", _name(0))
    await expect(tab.page.locator("#page-prev")).to_be_disabled()

    await tab.page.locator("#page-next").click()
    await expect(rows).to_have_count(QUEUES - PAGE_SIZE)
    await expect(rows.first).to_have_attribute("data-queue", _name(PAGE_SIZE))
    await expect(tab.page.locator("#page")).to_have_text(f"{PAGE_SIZE + 1}{DASH}{QUEUES}")
    await expect(tab.page.locator("#page-next")).to_be_disabled()

    await tab.page.locator("#page-prev").click()
    await expect(rows).to_have_count(PAGE_SIZE)
    await expect(rows.last).to_have_attribute("data-queue", _name(PAGE_SIZE - 1))
    assert tab.errors == []
    served.wipe()
