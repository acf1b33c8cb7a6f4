"""The deadline of the work being done now (SPEC §3.8: every request has one).

How this works: the HTTP layer opens a ``scope`` for each request; every storage call made
inside it waits at most until that moment, however many calls the request makes and however
many requests queue behind a stalled Redis. A request that legitimately waits (a long poll)
``extend``s its scope by the time it waits, so the storage calls after the wait still get the
full budget. Outside any scope (streams, timers, adapters) a call gets the caller's default
timeout of its own. A context variable carries the deadline, so it follows the request through
``await`` without being passed down by hand, and the storage layer needs no import of the HTTP
layer.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT = 5.0
_deadline: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "restmq_deadline", default=None
)


@contextmanager
def scope(seconds: float) -> Iterator[None]:
    """Everything awaited inside must be done ``seconds`` from now."""
    token = _deadline.set([time.monotonic() + seconds])
    try:
        yield
    finally:
        _deadline.reset(token)


def extend(seconds: float) -> None:
    """Move the current scope's deadline ``seconds`` later (no scope: nothing to do)."""
    cell = _deadline.get()
    if cell is not None:
        cell[0] += seconds


def remaining(default: float = DEFAULT) -> float:
    """Seconds left before the current deadline (``default`` outside any scope), never < 0."""
    cell = _deadline.get()
    if cell is None:
        return default
    return max(0.0, cell[0] - time.monotonic())
