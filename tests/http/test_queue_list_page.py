"""``GET /q/`` for browsers: the HTML page of one page of queues, and its link to the next.

The page is rendered from a table of awkward names (markup, quotes, ``&``, ``#``, ``?``,
``%``, ``+``, spaces, non-ASCII): each must come back exactly, from the page's text and from
its ``next`` link's query string, and no markup may get through. Then a browser's walk over a
real broker: following ``Next page`` from ``/q/`` visits every queue once, in name order.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import pytest

from restmq.http.listing import DEFAULT_LIMIT, Page, PageRequest
from restmq.http.pages import queue_list
from tests.helpers.broker import Broker

AWKWARD = [
    "<script>alert(1)",
    "<img src=x onerror=alert(1)>",
    'say "hi"',
    "it's",
    "a&b=c",
    "x#y?z",
    "100%25 %41",
    "plus+sign",
    "space here",
    "ünïcødé 🐇",
    "&lt;already&gt;",
]


class Links(HTMLParser):
    """The queue names (the job links' texts) and the ``rel=next`` href of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names: list[str] = []
        self.next: str | None = None
        self.tags: list[str] = []
        self._in_job_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "a" and found.get("rel") == "next":
            self.next = found["href"]
        self._in_job_link = tag == "a" and (found.get("href") or "").startswith("/j/")

    def handle_endtag(self, tag: str) -> None:
        self._in_job_link = False

    def handle_data(self, data: str) -> None:
        if self._in_job_link:
            self.names.append(data)


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    links.close()
    return links


def render(page: Page, wanted: PageRequest) -> str:
    body = queue_list(page, wanted).body
    assert isinstance(body, bytes)
    return body.decode()


@pytest.mark.parametrize("name", AWKWARD)
def test_the_next_link_carries_the_cursor_exactly_and_escaped(name: str) -> None:
    html = render(Page([name], 5, name), PageRequest("", 1))
    links = parse(html)
    assert links.names == [name]
    assert links.next is not None
    assert parse_qs(urlsplit(links.next).query) == {"after": [name], "limit": ["1"]}
    assert set(links.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "p",
                               "ul", "li", "a"}
    assert "<script>" not in html and "<img" not in html


@pytest.mark.parametrize(
    "page, wanted, query",
    [
        (Page(["a", "b"], 2, None), PageRequest(), None),
        (Page(["a", "b"], 3, "b"), PageRequest("", DEFAULT_LIMIT), {"after": ["b"]}),
        (Page(["c"], 9, "c"), PageRequest("b", 1), {"after": ["c"], "limit": ["1"]}),
        (Page([], 4, None), PageRequest("zzz", 10), None),
    ],
)
def test_a_next_link_only_when_another_page_follows_keeping_the_limit(
    page: Page, wanted: PageRequest, query: dict[str, list[str]] | None
) -> None:
    links = parse(render(page, wanted))
    assert links.names == page.names
    found = None if links.next is None else parse_qs(urlsplit(links.next).query)
    assert found == query


def test_the_page_says_how_many_queues_there_are_in_all() -> None:
    assert "2 of 7 queues" in render(Page(["a", "b"], 7, "b"), PageRequest("", 2))
    assert "No queues." in render(Page([], 0, None), PageRequest())


@pytest.mark.parametrize("start", ["/q/", "/q"])
def test_following_next_page_from_q_visits_every_queue_once_in_order(
    broker: Broker, start: str
) -> None:
    names = [*AWKWARD, "plain"]
    visited: list[str] = []
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        for name in names:
            added = http.post("/q/" + quote(name, safe=""), data={"value": "v"})
            assert added.status_code == 200, (name, added.text)
        url: str | None = urljoin(broker.url, start) + "?limit=3"
        while url is not None:
            answer = http.get(url)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(
                "text/html"
            )
            links = parse(answer.text)
            assert 1 <= len(links.names) <= 3
            visited += links.names
            url = None if links.next is None else urljoin(str(answer.url), links.next)
    assert visited == sorted(names)
