"""The dashboard and the help page in headless Chromium, against a real broker (SPEC §3.7).

The dashboard gets its counts from ``/events/stats`` (SSE); these tests check that it shows
what the broker holds, follows changes live, and that its buttons do what they say:
pause/resume (``/control``), the policy (``/p``) and purge (``DELETE /q``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.helpers.streams import Reader, start_reader
from tests.helpers.wait import async_wait_until
from tests.http_support import Served
from tests.web.conftest import Tab

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
pytestmark = pytest.mark.asyncio(loop_scope="module")
LIVE_WITHIN = 2.0  # seconds: the dashboard must show a change this soon
QUIET = 1.0  # seconds a paused queue's consumer is watched for (nothing may arrive)
# A reference that would make the browser fetch from elsewhere: src/href/url()/@import/fetch
EXTERNAL = re.compile(
    r"""(src|href)=["']?(https?:)?//"""
    r"""|url\(["']?(https?:)?//"""
    r"""|@import"""
    r"""|(fetch|EventSource|WebSocket)\(["'`](https?|wss?):"""
)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _post(http: aiohttp.ClientSession, served: Served, queue: str, value: str) -> str:
    async with http.post(f"{served.broker.url}/q/{queue}", data={"value": value}) as response:
        assert response.status == 200, await response.text()
        return (await response.text()).strip()


async def _json(http: aiohttp.ClientSession, served: Served, path: str) -> Any:
    async with http.get(served.broker.url + path) as response:
        assert response.status == 200, await response.text()
        return json.loads(await response.text())


async def _open_dashboard(tab: Tab, served: Served, fragment: str = "") -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{served.broker.url}/static/index.html{fragment}")
    await expect(tab.page.locator("#connection")).to_have_text("live")


def _cell(tab: Tab, queue: str, field: str) -> Any:
    return tab.page.locator(f'#queues tr[data-queue="{queue}"] td[data-field="{field}"]')


def _button(tab: Tab, queue: str, action: str) -> Any:
    return tab.page.locator(f'#queues tr[data-queue="{queue}"] button[data-action="{action}"]')


@pytest_asyncio.fixture(loop_scope="module")
async def sse_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_dashboard_loads_without_console_errors_and_shows_a_new_queue(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("shown")
    for value in ("a", "b", "c"):
        await _post(http, served, queue, value)
    await _open_dashboard(tab, served)
    await expect(_cell(tab, queue, "len")).to_have_text("3")
    await expect(_cell(tab, queue, "status")).to_have_text("started")
    await expect(_cell(tab, queue, "policy")).to_have_text("broadcast")
    await expect(_cell(tab, queue, "consumers")).to_have_text("0")
    assert await tab.page.title() == "RestMQ dashboard"
    assert tab.errors == []


async def test_dashboard_shows_a_post_within_two_seconds(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("live")
    await _post(http, served, queue, "first")
    await _open_dashboard(tab, served)
    await expect(_cell(tab, queue, "len")).to_have_text("1")
    posted = time.monotonic()
    await _post(http, served, queue, "second")
    await expect(_cell(tab, queue, "len")).to_have_text("2", timeout=LIVE_WITHIN * 1000)
    assert time.monotonic() - posted < LIVE_WITHIN
    assert tab.errors == []


async def _quiet(reader: Reader, seconds: float) -> None:
    """Fail if the reader gets anything within ``seconds`` (a paused queue delivers nothing)."""
    with pytest.raises(TimeoutError):
        await reader.wait_for(1, timeout=seconds)


async def test_dashboard_pause_button_stops_delivery_until_resumed(
    tab: Tab, served: Served, http: aiohttp.ClientSession, sse_session: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("paused")
    await _post(http, served, queue, "before")
    await _open_dashboard(tab, served)
    await _button(tab, queue, "pause").click()
    await expect(_cell(tab, queue, "status")).to_have_text("stopped")
    await expect(_button(tab, queue, "pause")).to_have_text("Resume")
    assert (await _json(http, served, f"/control/{queue}"))["status"]["status"] == 0

    reader = start_reader(sse_session, served.broker.url, "sse", queue)
    try:
        await expect(_cell(tab, queue, "consumers")).to_have_text("1")
        await _post(http, served, queue, "during")
        await _quiet(reader, QUIET)
        await expect(_cell(tab, queue, "len")).to_have_text("2")

        await _button(tab, queue, "pause").click()
        await expect(_cell(tab, queue, "status")).to_have_text("started")
        await reader.wait_for(2, timeout=10)
        assert [value for _, value in reader.received] == ["before", "during"]
    finally:
        await reader.stop()
    assert (await _json(http, served, f"/control/{queue}"))["status"]["status"] == 1
    assert tab.errors == []


async def test_dashboard_policy_button_switches_the_queue_policy(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("policy")
    await _post(http, served, queue, "v")
    await _open_dashboard(tab, served)
    await _button(tab, queue, "policy").click()
    await expect(_cell(tab, queue, "policy")).to_have_text("roundrobin")
    assert (await _json(http, served, f"/p/{queue}"))["value"] == "roundrobin"
    await _button(tab, queue, "policy").click()
    await expect(_cell(tab, queue, "policy")).to_have_text("broadcast")
    assert tab.errors == []


async def test_dashboard_purge_asks_first_and_a_refusal_changes_nothing(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("purged")
    for value in ("a", "b"):
        await _post(http, served, queue, value)
    await _open_dashboard(tab, served)
    answers = iter([False, True])  # first "Cancel", then "OK"
    questions: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if next(answers) else dialog.dismiss())

    tab.page.on("dialog", on_dialog)
    await _button(tab, queue, "purge").click()
    await async_wait_until(lambda: len(questions) == 1, 5, "the confirmation")
    assert (await _json(http, served, f"/stats/{queue}"))["len"] == 2
    await _button(tab, queue, "purge").click()
    await expect(tab.page.locator(f'#queues tr[data-queue="{queue}"]')).to_have_count(0)
    assert queue in questions[0] and "cannot be undone" in questions[0]
    assert queue not in (await _json(http, served, "/stats/"))["queues"]
    assert tab.errors == []


async def test_dashboard_tail_shows_messages_it_takes_from_the_queue(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("tailed")
    await _post(http, served, queue, "waiting")
    await _open_dashboard(tab, served, f"#queue={queue}")
    await expect(tab.page.locator("#tail-warning")).to_contain_text("takes messages out")
    await tab.page.locator("#tail-toggle").click()
    log = tab.page.locator("#tail-log li")
    await expect(log).to_have_count(1)
    await _post(http, served, queue, "live <b>value</b>")
    await expect(log).to_have_count(2)
    await expect(log.nth(1)).to_contain_text("live <b>value</b>")  # shown as text, not HTML
    await expect(tab.page.locator('#detail dd[data-field="len"]')).to_have_text("0")
    await tab.page.locator("#tail-toggle").click()
    await expect(tab.page.locator("#detail dd[data-field='consumers']")).to_have_text("0")
    assert tab.errors == []


async def test_help_page_sends_a_json_command_and_shows_the_answer(
    tab: Tab, served: Served, http: aiohttp.ClientSession
) -> None:
    from playwright.async_api import expect

    queue = _name("helped")
    await tab.page.goto(f"{served.broker.url}/static/help.html")
    await tab.page.locator("#queue-name").fill(queue)
    await tab.page.locator("#command").fill(
        json.dumps({"cmd": "add", "queue": queue, "value": "from the form"})
    )
    await tab.page.get_by_role("button", name="Send").click()
    await expect(tab.page.locator("#answer-status")).to_have_text("200 OK")
    answer = json.loads(await tab.page.locator("#answer").inner_text())
    assert answer == {"queue": queue, "value": "from the form", "key": f"{queue}:1"}
    await tab.page.locator("#example").select_option("take")
    await tab.page.get_by_role("button", name="Send").click()
    await expect(tab.page.locator("#answer")).to_contain_text('"from the form"')
    assert (await _json(http, served, f"/stats/{queue}"))["len"] == 0
    assert tab.errors == []


async def test_help_page_does_not_send_invalid_json(tab: Tab, served: Served) -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{served.broker.url}/static/help.html")
    await tab.page.locator("#command").fill('{"cmd": "add",')
    await tab.page.get_by_role("button", name="Send").click()
    await expect(tab.page.locator("#answer-status")).to_contain_text("not valid JSON")
    assert tab.errors == []


@pytest.mark.parametrize(
    "name", ["index.html", "help.html", "dashboard.js", "help.js", "restmq.css"]
)
async def test_static_pages_load_no_external_asset(
    name: str, served: Served, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{served.broker.url}/static/{name}") as response:
        assert response.status == 200, name
        text = await response.text()
    assert EXTERNAL.search(text) is None


async def _scene(http: aiohttp.ClientSession, served: Served, queues: list[str]) -> None:
    """A few queues in various states, for the screenshot."""
    orders, emails, audit, events, jobs = queues
    for i in range(12):
        await _post(http, served, emails, f"mail {i}")
    for i in range(5):
        await _post(http, served, audit, f"entry {i}")
    async with http.post(f"{served.broker.url}/q/{audit}",
                         data={"value": "later", "delay": "600"}) as response:
        assert response.status == 200
    async with http.post(f"{served.broker.url}/control/{emails}", data={"status": "stop"}):
        pass
    async with http.post(f"{served.broker.url}/p/{orders}", data={"policy": "roundrobin"}):
        pass
    await _post(http, served, events, "warming up")
    await _leased_and_dead(http, served, jobs)


async def _leased_and_dead(http: aiohttp.ClientSession, served: Served, queue: str) -> None:
    """Three messages in ``queue``: one waiting, one leased, one in its dead-letter queue."""
    base = f"{served.broker.url}"
    for i in range(3):
        await _post(http, served, queue, f"job {i}")
    async with http.post(f"{base}/p/{queue}", data={"max_deliveries": "1"}):
        pass
    async with http.post(f"{base}/q/{queue}/reserve", data={"timeout": "600"}):
        pass
    async with http.post(f"{base}/q/{queue}/reserve") as response:
        leased = await response.json(content_type=None)
    async with http.post(f"{base}/q/{queue}/nack",
                         data={"key": leased["key"], "receipt": leased["receipt"]}) as response:
        assert (await response.json(content_type=None))["outcome"] == "dead"


async def test_dashboard_screenshot(
    tab: Tab, served: Served, http: aiohttp.ClientSession, sse_session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """Renders a realistic scene; with RESTMQ_UPDATE_SCREENSHOT=1 it refreshes the docs'."""
    from playwright.async_api import expect

    served.wipe()  # a clean namespace: only the scene's queues
    await tab.page.emulate_media(reduced_motion="reduce")  # no change highlight in the picture
    queues = ["orders", "emails", "audit:log", "events", "jobs"]
    await _scene(http, served, queues)
    readers = [start_reader(sse_session, served.broker.url, "sse", "orders") for _ in range(2)]
    try:
        await _open_dashboard(tab, served, "#queue=events")
        await expect(_cell(tab, "orders", "consumers")).to_have_text("2")
        await tab.page.locator("#tail-toggle").click()
        for value in ('{"user": 42, "action": "login"}', '{"user": 7, "action": "logout"}'):
            await _post(http, served, "events", value)
        await expect(tab.page.locator("#tail-log li")).to_have_count(3)
        await expect(_cell(tab, "events", "consumers")).to_have_text("1")
        await expect(_cell(tab, "events", "len")).to_have_text("0")
        shot = tmp_path / "dashboard.png"
        await tab.page.screenshot(path=str(shot), full_page=True)
    finally:
        for reader in readers:
            await reader.stop()
    assert shot.stat().st_size > 10_000
    if os.environ.get("RESTMQ_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert tab.errors == []
