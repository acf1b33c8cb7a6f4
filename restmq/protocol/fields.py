"""Validation of numeric request fields, shared by forms, JSON bodies and JSON commands.

A field may arrive as text (a form or query string) or as a JSON number; either way it is
checked here and a clear BadRequest names the field and the accepted range. Text is read
strictly: ASCII digits with an optional decimal fraction for seconds (``30``, ``1.5``), ASCII
digits only for whole numbers. Python's own ``int()`` and ``float()`` would also take ``1_0``,
an Arabic-Indic digit, `` 5``, ``1e400`` and ``nan``; none of them is a number here.
"""

from __future__ import annotations

import math
import re

from restmq.errors import BadRequest

MAX_SECONDS = 10 * 365 * 24 * 3600
MAX_WAIT = 300.0  # longest long poll, seconds
MAX_COUNT = 1000  # most messages taken or reserved per request
MAX_VISIBILITY = 12 * 3600.0
DEFAULT_VISIBILITY = 30.0
MAX_DIGITS = 32  # longer text is no number a request needs (and int() of it is costly)

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # a str pattern: [0-9] is ASCII only
_WHOLE = re.compile(r"[0-9]+")


def _absent(value: object) -> bool:
    return value is None or value == ""


def _number(value: object, pattern: re.Pattern[str]) -> int | float | None:
    """A JSON number as it is, or text that fully matches ``pattern``; None when neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_DIGITS and pattern.fullmatch(value):
        return float(value) if "." in value else int(value)
    return None


def seconds(value: object, name: str, default: float = 0.0, maximum: float = MAX_SECONDS) -> float:
    """A number of seconds between 0 and ``maximum`` (``default`` when absent)."""
    if _absent(value):
        return default
    number = _number(value, _DECIMAL)
    if number is None:
        raise BadRequest(f"'{name}' must be a number of seconds in digits, like 30 or 1.5")
    # A JSON integer is compared as it is: float() of a 400-digit one would overflow.
    if (isinstance(number, float) and not math.isfinite(number)) or not 0 <= number <= maximum:
        raise BadRequest(f"'{name}' must be between 0 and {maximum:g} seconds")
    return float(number)


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
    number = _number(value, _WHOLE)
    if not isinstance(number, int):
        raise BadRequest(f"'{name}' must be a whole number in digits, like 10")
    if not 1 <= number <= maximum:
        raise BadRequest(f"'{name}' must be between 1 and {maximum}")
    return number


def whole(value: object, name: str, maximum: int) -> int:
    """A whole number between 0 and ``maximum`` (required)."""
    if _absent(value):
        raise BadRequest(f"missing '{name}'")
    number = _number(value, _WHOLE)
    if number == 0 and isinstance(number, int):
        return 0
    return count(value, name, maximum=maximum)
