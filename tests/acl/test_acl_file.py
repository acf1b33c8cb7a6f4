"""The ACL file holder: re-read when it changes, old rules kept when the new file is broken."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from restmq.errors import ConfigError
from restmq.http.access import AclFile
from restmq.protocol.acl import PRODUCER, Presented, decide

DENY_ALL = "[rest:producer]\nhosts_deny = all\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def producer_status(rules: AclFile) -> int:
    return decide(rules.rules.section(PRODUCER), "127.0.0.1", Presented(), "none").status


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_missing_or_broken_file_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read ACL file"):
        AclFile(tmp_path / "absent.conf")
    (tmp_path / "bad.conf").write_text("[nope]\n")
    with pytest.raises(ConfigError, match="unknown ACL section"):
        AclFile(tmp_path / "bad.conf")


def test_a_changed_file_is_read_again_at_most_once_per_interval(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "acl.conf"
    write(path, "[rest:producer]\n", 1_000)
    rules = AclFile(path, interval=1.0, clock=clock)
    write(path, DENY_ALL, 2_000)
    clock.now += 0.5
    assert producer_status(rules) == 200
    clock.now += 0.5
    assert producer_status(rules) == 403


def test_a_broken_new_version_keeps_the_old_rules_and_is_logged_once(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acl.conf"
    write(path, DENY_ALL, 1_000)
    rules = AclFile(path, interval=1.0, clock=clock)
    write(path, "[rest:producer\n", 2_000)
    with caplog.at_level(logging.WARNING, logger="restmq.access"):
        for _ in range(3):
            clock.now += 1
            assert producer_status(rules) == 403
    assert len(caplog.records) == 1
    assert "keeping the previous rules" in caplog.records[0].getMessage()
    write(path, "[rest:producer]\n", 3_000)
    clock.now += 1
    assert producer_status(rules) == 200


def test_a_deleted_file_keeps_the_rules_and_is_logged_once(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acl.conf"
    write(path, DENY_ALL, 1_000)
    rules = AclFile(path, interval=1.0, clock=clock)
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="restmq.access"):
        for _ in range(3):
            clock.now += 1
            assert producer_status(rules) == 403
    assert len(caplog.records) == 1
