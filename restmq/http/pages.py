"""The HTML pages served by routes: the queue list, the JSON protocol help, the job page, and
the files of ``restmq/static`` (the dashboard and the help page).

Every value shown is escaped; the pages use no external asset.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from restmq.errors import NotFound
from restmq.http.listing import DEFAULT_LIMIT, Page, PageRequest
from restmq.http.render import html
from restmq.types import Message, QueueStats

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
    "textarea{width:100%;font-family:monospace}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def queue_list(page: Page, wanted: PageRequest) -> web.Response:
    """``GET /q/`` for browsers: a page of queues, each linking to its job page, and a link to
    the next page when one follows (the same ``limit``, ``after`` the page's ``next``)."""
    items = "".join(
        f'<li><a href="/j/{quote(name, safe="")}">{escape(name)}</a></li>' for name in page.names
    )
    listed = f"<ul>{items}</ul>" if page.names else "<p>No queues.</p>"
    total = f"<p>{len(page.names)} of {page.count} queues.</p>"
    return html(_page("RestMQ queues", total + listed + _next_link(page, wanted)))


def _next_link(page: Page, wanted: PageRequest) -> str:
    """The link to the next page ('' on the last one): a query-only URL, so it works below
    ``/q`` and ``/q/`` and behind a proxy's path prefix; percent-encoded, then escaped."""
    if page.next is None:
        return ""
    query = {"after": page.next}
    if wanted.limit != DEFAULT_LIMIT:
        query["limit"] = str(wanted.limit)
    href = "?" + urlencode(query, quote_via=quote, safe="")
    return f'<p><a rel="next" href="{escape(href)}">Next page</a></p>'


_HELP = """
<p>Send a JSON command as the form field <code>body</code> (or as a raw JSON body) with
<code>POST /queue</code>.</p>
<table>
<tr><th>command</th><th>example</th><th>answer</th></tr>
<tr><td>add</td><td><code>{"cmd": "add", "queue": "q", "value": "v"}</code></td>
<td><code>{"queue": "q", "value": "v", "key": "q:1"}</code></td></tr>
<tr><td>get</td><td><code>{"cmd": "get", "queue": "q"}</code></td>
<td><code>{"queue": "q", "value": "v", "key": "q:1", "count": 1}</code></td></tr>
<tr><td>take</td><td><code>{"cmd": "take", "queue": "q"}</code></td>
<td><code>{"queue": "q", "value": "v", "key": "q:1"}</code></td></tr>
<tr><td>del</td><td><code>{"cmd": "del", "queue": "q", "key": "q:1"}</code></td>
<td><code>{"queue": "q", "deleted": true, "key": "q:1"}</code></td></tr>
</table>
<form method=post action="/queue">
<p><textarea name=body rows=6>{"cmd": "add", "queue": "test", "value": "hello"}</textarea></p>
<p><button type=submit>Send</button></p>
</form>
"""


def protocol_help() -> web.Response:
    return html(_page("RestMQ JSON protocol", _HELP))


def _rows(messages: list[Message]) -> str:
    return "".join(
        f"<tr><td>{escape(m.key)}</td><td>{escape(m.value)}</td><td>{m.count}</td></tr>"
        for m in messages
    )


def job_page(stats: QueueStats, messages: list[Message]) -> web.Response:
    counts = (
        f"<p>status: {stats.status} · policy: {stats.policy} · waiting: {stats.len} · "
        f"leased: {stats.leased} · delayed: {stats.delayed} · dead: {stats.dead} · "
        f"consumers: {stats.consumers}</p>"
    )
    table = (
        "<table><tr><th>key</th><th>value</th><th>gets</th></tr>" + _rows(messages) + "</table>"
        if messages
        else "<p>No message waiting.</p>"
    )
    return html(_page(f"Queue {stats.name}", counts + "<h2>Last 10 waiting</h2>" + table))


STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The files shipped with the package; a name is looked up here, never joined into a path
# unchecked (aiohttp decodes "%2F" in a path parameter).
STATIC_FILES = frozenset(path.name for path in STATIC_DIR.iterdir() if path.is_file())


async def static_file(request: web.Request) -> web.FileResponse:
    """``GET /static/<file>``; anything else is a JSON 404 like every other error (SPEC §3.8).

    (aiohttp's ``web.static`` answers a missing file with an empty ``application/octet-stream``
    404.) ``FileResponse`` still answers conditional and range requests.
    """
    name = request.match_info["filename"]
    if name not in STATIC_FILES:
        raise NotFound("not found")
    return web.FileResponse(STATIC_DIR / name)
