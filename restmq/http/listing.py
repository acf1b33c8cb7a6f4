"""Paged queue listings: ``GET /q/``, ``GET /control/``, ``GET /stats/`` and the dashboard feed.

A listing answers the queues in name order (code points), at most ``limit`` of them (default
``DEFAULT_LIMIT``, at most ``MAX_LIMIT``) after the cursor ``after=<queue name>``; ``count``
is the number of queues listed in all, and ``next`` — present only when more queues follow —
is the cursor of the next page (the last name of this one). A client pages with
``after=<next>`` until an answer has no ``next``; a queue listed all along comes exactly once.

Nothing here reads every queue in one go: names come from the store chunk by chunk, and the
stats of a page are read ``CHUNK`` queues at a time, the event loop running between
chunks, so ``/livez`` and every other request keep being answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from restmq.engine.store import QueueStore
from restmq.http.params import Params
from restmq.protocol import fields as checks

DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000  # like SQS ListQueues: pages of at most 1000
CHUNK = 100  # queues read at once, between two turns of the event loop
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page a request asks for."""

    after: str = ""
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class Page:
    """One page of queue names, with the total and the cursor of the next page."""

    names: list[str]
    count: int
    next: str | None

    def fields(self) -> dict[str, Any]:
        """``count``, and ``next`` when another page follows."""
        found: dict[str, Any] = {"count": self.count}
        if self.next is not None:
            found["next"] = self.next
        return found


def page_request(params: Params) -> PageRequest:
    """``after`` and ``limit`` from a request (400 when ``limit`` is not 1..MAX_LIMIT)."""
    limit = checks.count(params.fields.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
    return PageRequest(params.text("after") or "", limit)


async def read_page(store: QueueStore, wanted: PageRequest) -> Page:
    """The names of one page; one more is read to know whether another page follows."""
    names = await store.queues(wanted.after, wanted.limit + 1)
    count = await store.queue_count()
    if len(names) <= wanted.limit:
        return Page(names, count, None)
    names = names[: wanted.limit]
    return Page(names, count, names[-1])


async def read_each(names: Sequence[str], read: Callable[[str], Awaitable[T]]) -> list[T]:
    """``read`` of each queue (its stats, its status), ``CHUNK`` queues at a time, the event
    loop running between chunks; in the order given."""
    found: list[T] = []
    for start in range(0, len(names), CHUNK):
        found += await asyncio.gather(*(read(name) for name in names[start : start + CHUNK]))
        await asyncio.sleep(0)
    return found
