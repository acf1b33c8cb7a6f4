"""Table-driven tests of the syslog parser and the TCP framer."""

from __future__ import annotations

import pytest

from restmq.protocol.syslog import (
    FACILITIES,
    SEVERITIES,
    SyslogFramer,
    SyslogRecord,
    parse_datagram,
    parse_line,
)


def record(
    line: str,
    facility: str | None = None,
    severity: str | None = None,
    host: str | None = None,
    tstamp: str | None = None,
) -> SyslogRecord:
    return SyslogRecord(line=line, host=host, tstamp=tstamp, facility=facility, severity=severity)


RFC3164 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
RFC5424 = (
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
    "\ufeffAn application event log entry..."
)
LOGGER_5424 = (
    "<13>1 2026-11-28T04:00:00.123456+00:00 host root - - "
    '[timeQuality tzKnown="1" isSynced="0"] hello'
)

LINE_CASES = [
    pytest.param(
        RFC3164, record(RFC3164, "auth", "crit", "mymachine", "Oct 11 22:14:15"), id="rfc3164"
    ),
    pytest.param(
        RFC5424,
        record(RFC5424, "local4", "notice", "mymachine.example.com", "2003-10-11T22:14:15.003Z"),
        id="rfc5424_with_sd_and_bom",
    ),
    pytest.param(
        RFC5424.encode(),
        record(RFC5424, "local4", "notice", "mymachine.example.com", "2003-10-11T22:14:15.003Z"),
        id="rfc5424_as_bytes",
    ),
    pytest.param(
        "<165>1 - - - - - -",
        record("<165>1 - - - - - -", "local4", "notice"),
        id="rfc5424_nil_timestamp_and_host",
    ),
    pytest.param(
        "<0>1 - myhost",
        record("<0>1 - myhost", "kern", "emerg", "myhost"),
        id="rfc5424_header_ending_at_hostname",
    ),
    pytest.param(
        LOGGER_5424,
        record(LOGGER_5424, "user", "notice", "host", "2026-11-28T04:00:00.123456+00:00"),
        id="logger_rfc5424",
    ),
    pytest.param(
        "<13>Nov 28 04:00:00 host root: hello",
        record("<13>Nov 28 04:00:00 host root: hello", "user", "notice", "host", "Nov 28 04:00:00"),
        id="logger_rfc3164",
    ),
    pytest.param(
        "<13>Nov  2 04:00:00 root: hello\n",
        record("<13>Nov  2 04:00:00 root: hello", "user", "notice", None, "Nov  2 04:00:00"),
        id="rfc3164_without_host_and_padded_day",
    ),
    pytest.param(
        "<30>Nov 28 04:00:00 cron[123] started",
        record("<30>Nov 28 04:00:00 cron[123] started", "daemon", "info", None, "Nov 28 04:00:00"),
        id="rfc3164_tag_with_pid_is_not_a_host",
    ),
    pytest.param(
        "<13>2026-11-28T04:00:00.123+01:00 web1 app: hi",
        record(
            "<13>2026-11-28T04:00:00.123+01:00 web1 app: hi",
            "user",
            "notice",
            "web1",
            "2026-11-28T04:00:00.123+01:00",
        ),
        id="rsyslog_forward_format",
    ),
    pytest.param(
        b"<14>hello world\x00",
        record("<14>hello world", "user", "info"),
        id="python_syslog_handler",
    ),
    pytest.param(
        b"<11>myapp: boom\r\n", record("<11>myapp: boom", "user", "err"), id="bare_pri_with_crlf"
    ),
    pytest.param("<0>x", record("<0>x", "kern", "emerg"), id="lowest_pri"),
    pytest.param("<191>x", record("<191>x", "local7", "debug"), id="highest_pri"),
    pytest.param("<192>x", record("<192>x"), id="pri_above_191_is_unknown"),
    pytest.param(
        "<999>Oct 11 22:14:15 h x",
        record("<999>Oct 11 22:14:15 h x"),
        id="pri_above_191_ignores_header",
    ),
    pytest.param("<>x", record("<>x"), id="empty_pri"),
    pytest.param("<ab>x", record("<ab>x"), id="non_numeric_pri"),
    pytest.param("<1234>x", record("<1234>x"), id="four_digit_pri"),
    pytest.param("<13", record("<13"), id="unterminated_pri"),
    pytest.param(" <13>x", record(" <13>x"), id="leading_space_before_pri"),
    pytest.param("Oct 11 22:14:15 h x", record("Oct 11 22:14:15 h x"), id="no_pri"),
    pytest.param("", record(""), id="empty_line"),
    pytest.param(b"\x00\r\n", record(""), id="only_terminators"),
    pytest.param(
        b"<13>caf\xc3\xa9 \xff",
        record("<13>caf\u00e9 \ufffd", "user", "notice"),
        id="invalid_utf8_is_replaced",
    ),
    pytest.param(
        "<13>Oct 11 22:14:15x",
        record("<13>Oct 11 22:14:15x", "user", "notice"),
        id="timestamp_glued_to_text_is_no_header",
    ),
    pytest.param(
        "<13>1 2003-10-11 host",
        record("<13>1 2003-10-11 host", "user", "notice"),
        id="rfc5424_with_bad_timestamp_has_no_header",
    ),
]


@pytest.mark.parametrize(("line", "expected"), LINE_CASES)
def test_syslog_line_gets_facility_severity_host_and_timestamp(
    line: bytes | str, expected: SyslogRecord
) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize("code", range(24))
def test_every_facility_code_has_its_name(code: int) -> None:
    assert parse_line(f"<{code * 8 + 6}>x")["facility"] == FACILITIES[code]


def test_facility_and_severity_names_follow_rfc5424_order() -> None:
    assert FACILITIES[:4] == ("kern", "user", "mail", "daemon")
    assert FACILITIES[13:17] == ("security", "console", "solaris-cron", "local0")
    assert len(FACILITIES) == 24
    assert SEVERITIES == ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


DATAGRAM_CASES = [
    pytest.param(b"<14>hello\x00", ["<14>hello"], id="one_message_with_trailing_nul"),
    pytest.param(
        b"<14>a\n<13>b\r\n<12>c\n", ["<14>a", "<13>b", "<12>c"], id="several_lf_separated_messages"
    ),
    pytest.param(
        b"<11>Traceback:\n  File x\nValueError",
        ["<11>Traceback:\n  File x\nValueError"],
        id="continuation_lines_stay_in_one_message",
    ),
    pytest.param(b"no pri\nat all", ["no pri\nat all"], id="lines_without_pri_stay_together"),
    pytest.param(b"", [], id="empty_datagram"),
    pytest.param(b"\n\x00", [], id="only_terminators"),
]


@pytest.mark.parametrize(("data", "lines"), DATAGRAM_CASES)
def test_datagram_splits_only_before_a_new_pri(data: bytes, lines: list[str]) -> None:
    assert [r["line"] for r in parse_datagram(data)] == lines


def test_datagram_records_are_parsed_lines() -> None:
    assert parse_datagram(RFC3164.encode() + b"\n") == [parse_line(RFC3164)]


def octets(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


FRAMER_CASES = [
    pytest.param(b"<13>a\n<13>b\n", [b"<13>a", b"<13>b"], id="lf_lines"),
    pytest.param(b"<13>a\r\n<13>b\r\n", [b"<13>a", b"<13>b"], id="crlf_lines"),
    pytest.param(b"<14>a\x00<14>b\x00", [b"<14>a", b"<14>b"], id="nul_terminated"),
    pytest.param(b"\n\r\n\x00<13>a\n\n", [b"<13>a"], id="empty_lines_dropped"),
    pytest.param(
        octets(b"<13>1 - - - - - hi") + octets(b"<13>x\ny"),
        [b"<13>1 - - - - - hi", b"<13>x\ny"],
        id="octet_counted_frames_keep_newlines",
    ),
    pytest.param(
        octets(b"<13>a") + b"<13>b\n" + octets(b"<13>c") + b"\n" + octets(b"d\x00"),
        [b"<13>a", b"<13>b", b"<13>c", b"d\x00"],
        id="mixed_framings",
    ),
    pytest.param(
        b"12abc\n0 x\n1234567890 y\n",
        [b"12abc", b"0 x", b"1234567890 y"],
        id="digit_led_lines_that_are_not_octet_counts",
    ),
]


@pytest.mark.parametrize(("stream", "frames"), FRAMER_CASES)
def test_framer_splits_a_stream_into_frames(stream: bytes, frames: list[bytes]) -> None:
    assert SyslogFramer().feed(stream) == frames


@pytest.mark.parametrize(("stream", "frames"), FRAMER_CASES)
def test_framer_gives_same_frames_when_split_at_every_byte(
    stream: bytes, frames: list[bytes]
) -> None:
    for cut in range(len(stream) + 1):
        framer = SyslogFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) + framer.flush() == frames


@pytest.mark.parametrize(("stream", "frames"), FRAMER_CASES)
def test_framer_gives_same_frames_when_fed_one_byte_at_a_time(
    stream: bytes, frames: list[bytes]
) -> None:
    framer = SyslogFramer()
    got = [frame for i in range(len(stream)) for frame in framer.feed(stream[i : i + 1])]
    assert got == frames


OVERSIZE_CASES = [
    pytest.param(b"x" * 40 + b"\n<13>short\n", [b"x" * 16, b"<13>short"], id="long_line_is_cut"),
    pytest.param(b"x" * 16 + b"\n<13>b\n", [b"x" * 16, b"<13>b"], id="line_of_exactly_max"),
    pytest.param(b"x" * 17 + b"\n", [b"x" * 16], id="line_one_over_max"),
    pytest.param(b"y" * 15 + b"\r\n", [b"y" * 15], id="crlf_after_line_just_under_max"),
    pytest.param(
        octets(b"y" * 40) + b"<13>next\n",
        [b"y" * 16, b"<13>next"],
        id="octet_count_above_max_is_cut_and_skipped",
    ),
    pytest.param(octets(b"y" * 16) + octets(b"z"), [b"y" * 16, b"z"], id="octet_count_of_max"),
    pytest.param(b"999999999 " + b"y" * 40, [b"y" * 16], id="huge_octet_count_keeps_skipping"),
]


@pytest.mark.parametrize(("stream", "frames"), OVERSIZE_CASES)
def test_framer_cuts_oversized_frames_and_stays_bounded(stream: bytes, frames: list[bytes]) -> None:
    for cut in range(len(stream) + 1):
        framer = SyslogFramer(max_line=16)
        got = framer.feed(stream[:cut])
        assert framer.buffered <= 16
        got += framer.feed(stream[cut:])
        assert framer.buffered <= 16
        assert got + framer.flush() == frames


def test_framer_buffer_stays_bounded_on_an_endless_line() -> None:
    framer = SyslogFramer(max_line=100)
    frames = [f for _ in range(1000) for f in framer.feed(b"z" * 1000)]
    assert frames == [b"z" * 100]
    assert framer.buffered == 0
    assert framer.feed(b"end\n<13>ok\n") == [b"<13>ok"]


def test_framer_with_tiny_max_line_still_makes_progress() -> None:
    framer = SyslogFramer(max_line=1)
    assert framer.feed(b"123456789x\n<1>\n5 abcde") == [b"1", b"<", b"a"]
    assert framer.buffered <= 9


FLUSH_CASES = [
    pytest.param(b"<13>partial\r", [b"<13>partial"], id="partial_line"),
    pytest.param(b"12", [b"12"], id="partial_digits"),
    pytest.param(b"10 <13>ab", [b"<13>ab"], id="partial_octet_frame"),
    pytest.param(b"<13>done\n", [], id="nothing_pending"),
    pytest.param(b"", [], id="empty_stream"),
]


@pytest.mark.parametrize(("stream", "pending"), FLUSH_CASES)
def test_flush_returns_the_partial_frame_at_end_of_stream(
    stream: bytes, pending: list[bytes]
) -> None:
    framer = SyslogFramer()
    framer.feed(stream)
    assert framer.flush() == pending
    assert framer.buffered == 0
    assert framer.feed(b"<13>again\n") == [b"<13>again"]


@pytest.mark.parametrize("max_line", [0, -1])
def test_framer_rejects_a_max_line_below_one(max_line: int) -> None:
    with pytest.raises(ValueError, match="max_line"):
        SyslogFramer(max_line=max_line)


def test_flush_never_returns_more_than_max_line() -> None:
    framer = SyslogFramer(max_line=2)
    framer.feed(b"12345")
    assert framer.flush() == [b"12"]
