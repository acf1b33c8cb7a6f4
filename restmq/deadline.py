"""The deadline of the work being done now (SPEC §3.8: every request has one).

How this works: the HTTP layer (or any other entry point: a stream, an adapter) opens a
``scope`` for a request; every storage call made inside it waits at most until that moment,
however many calls the request makes and however many requests queue behind a stalled Redis.
Outside any scope a call gets ``DEFAULT`` seconds of its own. A context variable carries the
deadline, so it follows the request through ``await`` without being passed down by hand, and
the storage layer needs no import of the HTTP layer.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT = 5.0
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "restmq_deadline", default=None
)


@contextmanager
def scope(seconds: float) -> Iterator[None]:
    """Everything awaited inside must be done ``seconds`` from now."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(default: float = DEFAULT) -> float:
    """Seconds left before the current deadline (``default`` outside any scope), never < 0."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())
