"""Numeric request fields (restmq.protocol.fields), as tables: what is a number, what is not.

Text is strict: ASCII digits (and a decimal fraction for seconds), nothing that Python's
``int()`` or ``float()`` would also take (underscores, other scripts' digits, spaces, hex,
exponents, ``nan``). JSON numbers are taken as they are, within range.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from restmq.errors import BadRequest
from restmq.protocol import fields

NOT_NUMBERS = [
    "1_0",
    "\u0661",  # ARABIC-INDIC DIGIT ONE
    "\uff15",  # FULLWIDTH DIGIT FIVE
    "\u00b2",  # SUPERSCRIPT TWO
    " 5",
    "5 ",
    "5\n",
    "0x10",
    "0b1",
    "1e400",
    "1e3",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "+5",
    "-1",
    "1.",
    ".5",
    "1,5",
    "9" * 40,
    True,
    False,
    [5],
    {"n": 5},
    float("nan"),
    float("inf"),
]
CHECKS: dict[str, Callable[[object], object]] = {
    "seconds": lambda value: fields.seconds(value, "ttl"),
    "positive_seconds": lambda value: fields.positive_seconds(value, "timeout", 30.0, 3600.0),
    "count": lambda value: fields.count(value),
    "whole": lambda value: fields.whole(value, "max_deliveries", 1000),
}


@pytest.mark.parametrize("check", CHECKS, ids=str)
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_text_that_python_would_read_as_a_number_is_refused(check: str, value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        CHECKS[check](value)
    assert "ttl" in caught.value.message or check != "seconds"


@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_a_json_integer_too_large_for_a_float_is_out_of_range_not_a_crash(check: str) -> None:
    with pytest.raises(BadRequest, match="between"):
        CHECKS[check](10**400)


SECONDS = [("0", 0.0), ("30", 30.0), ("1.5", 1.5), ("007", 7.0), (12, 12.0), (0.25, 0.25),
           (None, 0.0), ("", 0.0)]


@pytest.mark.parametrize(("value", "expected"), SECONDS)
def test_seconds_are_ascii_decimals_or_json_numbers(value: object, expected: float) -> None:
    assert fields.seconds(value, "ttl") == expected


WHOLE = [("1", 1), ("10", 10), (7, 7), ("0010", 10)]


@pytest.mark.parametrize(("value", "expected"), WHOLE)
def test_counts_are_ascii_digits_or_json_integers(value: object, expected: int) -> None:
    assert fields.count(value) == expected


@pytest.mark.parametrize("value", ["1.5", 1.5, "0", 0, "1001", 1001])
def test_a_count_is_a_whole_number_from_1_to_the_maximum(value: object) -> None:
    with pytest.raises(BadRequest):
        fields.count(value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), (0, 0), ("00", 0), ("12", 12)])
def test_a_whole_number_may_be_zero(value: object, expected: int) -> None:
    assert fields.whole(value, "max_deliveries", 1000) == expected


def test_out_of_range_seconds_name_the_field_and_the_range() -> None:
    with pytest.raises(BadRequest, match="'wait' must be between 0 and 300 seconds"):
        fields.seconds("301", "wait", maximum=300)
