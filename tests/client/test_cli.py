"""The CLI client as real subprocesses (``python -m restmq add …``) against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from restmq.client import Client
from tests.client.conftest import wait_consumers
from tests.helpers.broker import Broker, free_port

TIMEOUT = 60  # seconds for one command; starting the interpreter is most of it


def restmq(
    *args: str, server: str | None = None, stdin: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m restmq ARGS`` and check its exit status."""
    env = {**os.environ, "RESTMQ_SERVER": server} if server else dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "restmq", *args], input=stdin, capture_output=True, text=True,
        env=env, timeout=TIMEOUT,
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


@pytest.fixture
def url(valkey_broker: Broker) -> str:
    return valkey_broker.url


def test_add_get_take_and_del_print_for_people_and_json_for_scripts(
    url: str, queue: str
) -> None:
    assert restmq("add", queue, "hello world", server=url).stdout == f"{queue}:1\n"
    added = json.loads(restmq("add", queue, "007", "--json", server=url).stdout)
    assert added == {"queue": queue, "key": f"{queue}:2"}
    assert restmq("get", queue, server=url).stdout == f"{queue}:1  hello world  (count 1)\n"
    assert json.loads(restmq("take", queue, "--json", server=url).stdout) == {
        "queue": queue, "key": f"{queue}:1", "value": "hello world", "count": 1,
    }
    assert restmq("del", queue, f"{queue}:2", server=url).stdout == f"deleted {queue}:2\n"
    gone = restmq("del", queue, f"{queue}:2", server=url, code=1)
    assert "no such message" in gone.stderr
    empty = restmq("take", queue, "--json", server=url, code=1)
    assert empty.stdout == "" and "is empty" in empty.stderr


def test_the_server_comes_from_the_flag_or_the_environment(url: str, queue: str) -> None:
    assert restmq("add", "--server", url, queue, "v").stdout == f"{queue}:1\n"
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused = restmq("take", queue, "--attempts", "1", server=nowhere, code=2)
    assert refused.stderr.startswith("restmq: cannot talk to")
    assert restmq("take", "--server", url, queue, server=nowhere).stdout == f"{queue}:1  v\n"


def test_batch_add_from_a_file_has_no_progress_bar_when_not_a_tty(
    url: str, queue: str, tmp_path: Path
) -> None:
    lines = [f"message {n}" for n in range(2500)] + ["", "é ✓"]
    source = tmp_path / "messages.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = restmq("add", queue, "--file", str(source), "--batch-size", "1000", server=url)
    assert done.stdout == f"added 2502 messages to {queue} ({queue}:1 … {queue}:2502)\n"
    assert done.stderr == ""
    with Client(url) as client:
        taken = client.take(queue, count=1000) + client.take(queue, count=1000)
        taken += client.take(queue, count=1000)
    assert [m.value for m in taken] == lines


def test_batch_add_from_stdin_prints_the_keys_as_json(url: str, queue: str) -> None:
    done = restmq("add", queue, "--file", "-", "--json", server=url, stdin="a\r\nb\n")
    assert json.loads(done.stdout) == {"queue": queue, "keys": [f"{queue}:1", f"{queue}:2"]}
    forced = restmq("add", queue, "--file", "-", "--progress", server=url, stdin="c\n")
    assert "3 messages" not in forced.stdout and forced.stderr  # shown, on stderr


def test_an_add_run_again_with_its_idempotency_key_adds_nothing(
    url: str, queue: str, tmp_path: Path
) -> None:
    source = tmp_path / "messages.txt"
    source.write_text("".join(f"m{n}\n" for n in range(5)))
    command = ["add", queue, "--file", str(source), "--batch-size", "2", "--json",
               "--idempotency-key", "import-1"]
    first, again = (json.loads(restmq(*command, server=url).stdout) for _ in range(2))
    single = [restmq("add", queue, "one", "--idempotency-key", "k", server=url).stdout
              for _ in range(2)]

    assert first == again == {"queue": queue, "keys": [f"{queue}:{n}" for n in range(1, 6)]}
    assert single == [f"{queue}:6\n"] * 2
    with Client(url) as client:
        assert client.stats(queue).len == 6


def test_reserve_then_ack_with_the_key_and_receipt(url: str, queue: str) -> None:
    restmq("add", queue, "job", server=url)
    lease = json.loads(restmq("reserve", queue, "--visibility", "60", "--json", server=url).stdout)
    assert (lease["key"], lease["value"], lease["deliveries"]) == (f"{queue}:1", "job", 1)
    acked = restmq("ack", queue, lease["key"], lease["receipt"], server=url)
    assert acked.stdout == f"acked {queue}:1\n"
    gone = restmq("ack", queue, lease["key"], lease["receipt"], server=url, code=1)
    assert "no such message" in gone.stderr
    restmq("add", queue, "again", server=url)
    table = restmq("reserve", queue, server=url).stdout.splitlines()
    assert table[0].split() == ["KEY", "DELIVERIES", "RECEIPT", "VALUE"]
    key, deliveries, receipt, value = table[1].split()
    assert (key, deliveries, value) == (f"{queue}:2", "1", "again")
    wrong = restmq("ack", queue, key, "-Xnot-it", server=url, code=2)  # a receipt may start "-"
    assert "wrong or expired receipt" in wrong.stderr
    nacked = restmq("nack", queue, key, receipt, "--json", server=url)
    assert json.loads(nacked.stdout)["outcome"] == "requeued"
    assert "no such message" in restmq("nack", queue, f"{queue}:9", "r", server=url, code=1).stderr
    restmq("add", queue, "never leased", server=url)
    never = restmq("ack", queue, f"{queue}:3", "r", server=url, code=2)
    assert never.stderr == f"restmq: message {queue}:3 is not leased\n"


def test_ack_and_nack_settle_what_reserve_printed_in_one_batch(
    url: str, queue: str, tmp_path: Path
) -> None:
    restmq("add", queue, "--file", "-", server=url, stdin="a\nb\nc\nd\n")
    leases = tmp_path / "leases.json"
    leases.write_text(restmq("reserve", queue, "-n", "2", "--json", server=url).stdout)
    one = restmq("reserve", queue, "--json", server=url).stdout  # one object, on one line
    last = restmq("reserve", queue, "--json", server=url).stdout

    acked = restmq("ack", queue, "--file", str(leases), server=url)
    nacked = restmq("nack", queue, "--file", "-", "--delay", "60", "--json", server=url,
                    stdin=one + last)

    assert acked.stdout == f"acked {queue}:1\nacked {queue}:2\n"
    assert json.loads(nacked.stdout) == {"queue": queue, "failed": [], "nacked": [
        {"key": f"{queue}:3", "outcome": "delayed"}, {"key": f"{queue}:4", "outcome": "delayed"},
    ]}
    again = restmq("ack", queue, "--file", str(leases), server=url, code=1)  # all gone: 1
    assert again.stdout == "" and again.stderr.count("no such message") == 2
    mixed = restmq("nack", queue, "--file", "-", server=url, stdin=one + last, code=2)
    assert mixed.stderr.count("wrong or expired receipt") == 2


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["ack", "q", "--file", "-"], "not json\n", "line 1 is not JSON"),
        (["ack", "q", "--file", "-"], '[{"key": "q:1"}]', "'receipt'"),
        (["nack", "q", "q:1", "r", "--file", "-"], "[]", "either KEY and RECEIPT or --file"),
        (["ack", "q", "q:1"], None, "either KEY and RECEIPT or --file"),
        (["add", "q", "--file", "-"], "caf\udce9\n", "line 1 is not valid UTF-8"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    url: str, args: list[str], stdin: str | None, message: str
) -> None:
    data = None if stdin is None else stdin.encode("utf-8", "surrogateescape")
    done = subprocess.run(
        [sys.executable, "-m", "restmq", *args, "--server", url], input=data,
        capture_output=True, timeout=TIMEOUT,
    )
    assert done.returncode == 2, done
    assert message in done.stderr.decode(), done.stderr


def test_stats_policy_pause_and_resume(url: str, queue: str) -> None:
    restmq("add", queue, "v", server=url)
    assert restmq("policy", queue, server=url).stdout == f"{queue}: broadcast\n"
    changed = restmq("policy", queue, "roundrobin", "--max-deliveries", "3", server=url)
    assert changed.stdout == f"{queue}: roundrobin (max_deliveries 3)\n"
    assert restmq("pause", queue, server=url).stdout == f"{queue} paused\n"
    rows = restmq("stats", queue, server=url).stdout.splitlines()
    assert rows[0].split() == ["QUEUE", "LEN", "STATUS", "POLICY", "CONSUMERS", "LEASED",
                               "DELAYED", "DEAD"]
    assert rows[1].split() == [queue, "1", "stopped", "roundrobin", "0", "0", "0", "0"]
    restmq("resume", queue, server=url)
    every = json.loads(restmq("stats", "--json", server=url).stdout)
    assert every[queue]["status"] == "started" and every[queue]["len"] == 1
    assert queue in restmq("queues", server=url).stdout.splitlines()


def test_tail_f_streams_until_ctrl_c(url: str, queue: str) -> None:
    command = [sys.executable, "-m", "restmq", "tail", "-f", queue, "--json", "--server", url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as tail:
        try:
            with Client(url) as client:
                wait_consumers(client, queue, 1, timeout=TIMEOUT)
                keys = client.add(queue, ["one", "two\nlines"])
            assert tail.stdout is not None
            lines = [json.loads(tail.stdout.readline()) for _ in keys]
            tail.send_signal(signal.SIGINT)
            assert tail.wait(TIMEOUT) == 130
        finally:
            tail.kill()
    assert lines == [{"key": keys[0], "value": "one"}, {"key": keys[1], "value": "two\nlines"}]


@pytest.mark.parametrize("via", ["sse", "comet", "ws"])
def test_tail_with_a_count_stops_after_that_many(url: str, queue: str, via: str) -> None:
    with Client(url) as client:
        client.add(queue, ["a", "b", "c"])  # waiting: the first consumer gets the backlog
    done = restmq("tail", queue, "-n", "2", "--via", via, server=url)
    assert done.stdout == f"{queue}:1  a\n{queue}:2  b\n"
