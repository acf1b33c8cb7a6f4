"""Validation of numeric request fields, shared by forms, JSON bodies and JSON commands.

A field may arrive as text (a form or query string) or as a JSON number; either way it is
checked here and a clear BadRequest names the field and the accepted range.
"""

from __future__ import annotations

import math

from restmq.errors import BadRequest

MAX_SECONDS = 10 * 365 * 24 * 3600
MAX_WAIT = 300.0  # longest long poll, seconds
MAX_COUNT = 1000  # most messages taken or reserved per request
MAX_VISIBILITY = 12 * 3600.0
DEFAULT_VISIBILITY = 30.0


def _absent(value: object) -> bool:
    return value is None or value == ""


def seconds(value: object, name: str, default: float = 0.0, maximum: float = MAX_SECONDS) -> float:
    """A number of seconds between 0 and ``maximum`` (``default`` when absent)."""
    if _absent(value):
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"'{name}' must be a number of seconds")
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number of seconds") from None
    if not math.isfinite(number) or not 0 <= number <= maximum:
        raise BadRequest(f"'{name}' must be between 0 and {maximum:g} seconds")
    return number


def positive_seconds(value: object, name: str, default: float, maximum: float) -> float:
    """Like ``seconds`` but strictly above zero."""
    number = seconds(value, name, default, maximum)
    if number <= 0:
        raise BadRequest(f"'{name}' must be more than 0 seconds")
    return number


def count(value: object, name: str = "count", default: int = 1, maximum: int = MAX_COUNT) -> int:
    """A whole number between 1 and ``maximum`` (``default`` when absent)."""
    if _absent(value):
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"'{name}' must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number") from None
    if not 1 <= number <= maximum:
        raise BadRequest(f"'{name}' must be between 1 and {maximum}")
    return number


def whole(value: object, name: str, maximum: int) -> int:
    """A whole number between 0 and ``maximum`` (required)."""
    if _absent(value):
        raise BadRequest(f"missing '{name}'")
    if value in (0, "0"):
        return 0
    return count(value, name, maximum=maximum)
