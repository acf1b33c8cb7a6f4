"""The pure parts of ``restmq migrate-v1``: reading a 1.x message, cutting a batch into
script calls (restmq.engine.migrate)."""

from __future__ import annotations

import pytest

from restmq.engine.migrate import Gone, V1Message, chunks, v1_message


def msg(msg_id: int, size: int = 1) -> V1Message:
    return V1Message(msg_id, "x" * size, 0, 0)


@pytest.mark.parametrize(
    ("raw", "pttl", "refs", "expected"),
    [
        (b"hello", -1, None, V1Message(3, "hello", 0, 0)),
        (b"hello", 1500, b"2", V1Message(3, "hello", 1500, 2)),
        (None, -2, b"4", "expired"),
        (b"gone meanwhile", -2, None, "expired"),  # expired between GET and PTTL
        (b"\xff\xfe", -1, None, "not_text"),
        ("ümlaut ✓".encode(), -1, b"junk", V1Message(3, "ümlaut ✓", 0, 0)),
        (b"", -1, b"-5", V1Message(3, "", 0, 0)),
    ],
)
def test_a_1x_message_is_read_as_it_was_or_says_why_it_cannot_move(
    raw: bytes | None, pttl: int, refs: bytes | None, expected: V1Message | Gone
) -> None:
    assert v1_message(3, raw, pttl, refs) == expected


def test_a_batch_under_the_byte_limit_is_one_call_looking_up_to_its_highest_id() -> None:
    fetched: list[V1Message | Gone] = [msg(1), "expired", msg(3), "not_text"]
    assert chunks([1, 2, 3, 4], fetched, 100) == [(4, [msg(1), msg(3)])]


def test_a_batch_over_the_byte_limit_is_cut_between_messages_in_order() -> None:
    fetched: list[V1Message | Gone] = [msg(1, 60), msg(2, 60), "expired", msg(4, 30), msg(5, 90)]
    assert chunks([1, 2, 3, 4, 5], fetched, 100) == [
        (1, [msg(1, 60)]),
        (4, [msg(2, 60), msg(4, 30)]),
        (5, [msg(5, 90)]),
    ]


def test_a_message_larger_than_the_limit_still_moves_alone() -> None:
    assert chunks([7], [msg(7, 500)], 100) == [(7, [msg(7, 500)])]


def test_a_batch_of_gone_values_still_moves_the_marker() -> None:
    assert chunks([8, 9], ["expired", "expired"], 100) == [(9, [])]
