"""Waiting on a condition with a timeout — never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL = 0.02


def wait_until(condition: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(POLL)


async def async_wait_until(
    condition: Callable[[], Awaitable[bool] | bool], timeout: float, what: str = "condition"
) -> None:
    """Wait for a condition (a plain or an async callable) while the event loop runs."""
    deadline = time.monotonic() + timeout
    while not await _check(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        await asyncio.sleep(POLL)


async def _check(condition: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)
