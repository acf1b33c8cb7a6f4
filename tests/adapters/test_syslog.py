"""The syslog receiver as a real process, fed by real senders (SPEC §5).

``logger(1)`` from util-linux over TCP (newline framing and RFC 6587 octet counting) and UDP,
in RFC 3164 and RFC 5424; Python's ``SysLogHandler`` over TCP and UDP; raw sockets for
malformed, oversize and abandoned input. Messages are taken from ``syslogd:127.0.0.1`` through
the store and checked field by field.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
import redis

from restmq.adapters.syslog import Sink
from restmq.engine.connection import open_storage, prepare
from restmq.engine.store import QueueStore
from tests.adapters.daemons import Daemon, Inbox, SyslogDaemon, storage_args, tcp_accepts
from tests.conftest import valkey_binary
from tests.helpers.broker import Broker, free_port
from tests.helpers.wait import async_wait_until, wait_until

LOGGER = "/usr/bin/logger"
QUEUE = "syslogd:127.0.0.1"
HOSTNAME = socket.gethostname()
ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")
BSD_STAMP = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)

TRANSPORTS = [
    pytest.param(["-T"], id="tcp-newline"),
    pytest.param(["-T", "--octet-count"], id="tcp-octet-count"),
    pytest.param(["-d"], id="udp"),
]
FORMATS = [
    # format flag, the host logger(1) writes, the timestamp shape
    pytest.param("--rfc3164", HOSTNAME.split(".")[0], BSD_STAMP, id="rfc3164"),
    pytest.param("--rfc5424", HOSTNAME, ISO_STAMP, id="rfc5424"),
]


@pytest.fixture(autouse=True)
def _logger_installed() -> None:
    if not Path(LOGGER).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {LOGGER} is missing (Debian package bsdutils)")
        pytest.skip(f"{LOGGER} (util-linux) is not installed")


def logger(port: int, *args: str, stdin: bytes | None = None) -> None:
    command = [LOGGER, "-n", "127.0.0.1", "-P", str(port), *args]
    subprocess.run(command, input=stdin, check=True, timeout=10)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def assert_received_here(message: dict[str, object]) -> None:
    """A message without a header host or timestamp: the sender's IP and an ISO receive time."""
    assert message["host"] == "127.0.0.1"
    assert isinstance(message["tstamp"], str)
    assert datetime.fromisoformat(message["tstamp"]).tzinfo is not None


@pytest.mark.parametrize(("rfc", "host", "stamp"), FORMATS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_logger_lines_arrive_with_their_facility_and_severity(
    syslogd: SyslogDaemon,
    store: QueueStore,
    transport: list[str],
    rfc: str,
    host: str,
    stamp: re.Pattern[str],
) -> None:
    text = unique("disk almost full")
    logger(syslogd.port, *transport, rfc, "-p", "local3.warning", text)
    message = await Inbox(store, QUEUE).wait_for_line(text)
    assert list(message) == ["line", "host", "tstamp", "facility", "severity"]
    assert message["line"].startswith("<156>")  # local3 (19) * 8 + warning (4)
    assert (message["facility"], message["severity"]) == ("local3", "warning")
    assert message["host"] == host
    assert stamp.fullmatch(message["tstamp"]), message["tstamp"]


async def test_logger_default_priority_is_user_notice(
    syslogd: SyslogDaemon, store: QueueStore
) -> None:
    text = unique("plain line")
    logger(syslogd.port, "-T", text)
    message = await Inbox(store, QUEUE).wait_for_line(text)
    assert (message["facility"], message["severity"]) == ("user", "notice")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_line_of_logger_input_becomes_one_message_in_order(
    syslogd: SyslogDaemon, store: QueueStore, transport: list[str]
) -> None:
    lines = [unique(f"line {n}") for n in range(20)]
    logger(syslogd.port, *transport, "-p", "mail.err", stdin="\n".join(lines).encode() + b"\n")
    messages = await Inbox(store, QUEUE).wait_for(len(lines))
    assert [m["line"].rsplit("] ", 1)[-1] for m in messages] == lines
    assert {(m["facility"], m["severity"]) for m in messages} == {("mail", "err")}


@pytest.mark.parametrize(
    "socktype", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["tcp", "udp"]
)
async def test_python_syslog_handler_records_arrive_with_their_severity(
    syslogd: SyslogDaemon, store: QueueStore, socktype: socket.SocketKind
) -> None:
    text = unique("from python")
    handler = logging.handlers.SysLogHandler(
        ("127.0.0.1", syslogd.port), facility=logging.handlers.SysLogHandler.LOG_LOCAL3,
        socktype=socktype,
    )
    log = logging.getLogger(f"restmq.test.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    try:
        for level in LEVELS:
            log.log(level, text)
    finally:
        log.removeHandler(handler)
        handler.close()
    messages = await Inbox(store, QUEUE).wait_for(5)
    assert [m["severity"] for m in messages] == ["debug", "info", "warning", "err", "crit"]
    assert {m["facility"] for m in messages} == {"local3"}
    assert [m["line"] for m in messages] == [f"<{152 + s}>{text}" for s in (7, 6, 4, 3, 2)]
    for message in messages:
        assert_received_here(message)


def send_tcp(port: int, payload: bytes, reset: bool = False) -> None:
    """Send bytes on a fresh connection and close it (with a RST when ``reset``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def send_udp(port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, ("127.0.0.1", port))


MALFORMED = [
    b"no priority at all",
    b"<999>priority out of range",
    b"<abc>priority not a number",
    b"<>empty priority",
]


async def test_malformed_lines_arrive_with_null_facility_and_severity(
    syslogd: SyslogDaemon, store: QueueStore
) -> None:
    send_tcp(syslogd.port, b"\n".join(MALFORMED) + b"\n")
    inbox = Inbox(store, QUEUE)
    messages = await inbox.wait_for(len(MALFORMED))
    send_udp(syslogd.port, b"udp \xff\xfe not utf-8")
    messages = await inbox.wait_for(len(MALFORMED) + 1)
    assert [m["line"] for m in messages] == [
        *(line.decode() for line in MALFORMED),
        "udp \ufffd\ufffd not utf-8",
    ]
    for message in messages:
        assert (message["facility"], message["severity"]) == (None, None)
        assert_received_here(message)


async def test_an_oversize_line_is_cut_to_the_maximum_and_the_listener_keeps_working(
    syslogd_factory: Callable[..., SyslogDaemon], store: QueueStore
) -> None:
    daemon = syslogd_factory("--syslog-max-line", "64")
    long = b"<14>" + b"x" * 100_000
    inbox = Inbox(store, QUEUE)
    send_tcp(daemon.port, long + b"\n<14>after the long line\n")
    await inbox.wait_for_line("after the long line")
    after = b"<14>after the long frame"
    send_tcp(daemon.port, b"%d %s%d %s" % (len(long), long, len(after), after))
    await inbox.wait_for_line("after the long frame")
    send_udp(daemon.port, long[:20_000])
    await inbox.wait_for(5)
    cut = long[:64].decode()
    assert [m["line"] for m in inbox.messages] == [
        cut, "<14>after the long line", cut, "<14>after the long frame", cut
    ]
    assert {m["severity"] for m in inbox.messages} == {"info"}


async def test_a_client_that_sends_garbage_and_disconnects_does_not_crash_the_listener(
    syslogd: SyslogDaemon, store: QueueStore
) -> None:
    garbage = [
        os.urandom(256 * 1024),
        b"99999999 an octet count that never completes",
        b"\x00\x00\r\n\r\n\x00",
        b"<14>a line without its newline",
    ]
    for payload in garbage:
        send_tcp(syslogd.port, payload, reset=True)
        send_tcp(syslogd.port, payload)
    send_udp(syslogd.port, b"")
    text = unique("still listening")
    logger(syslogd.port, "-T", text)
    logger(syslogd.port, "-d", text + " over udp")
    inbox = Inbox(store, QUEUE)
    await inbox.wait_for_line(text)
    await inbox.wait_for_line(text + " over udp")
    assert syslogd.alive()


async def test_sigterm_stores_the_partial_line_of_an_open_connection_and_exits_0(
    syslogd: SyslogDaemon, store: QueueStore
) -> None:
    inbox = Inbox(store, QUEUE)
    with socket.create_connection(("127.0.0.1", syslogd.port), timeout=5) as sock:
        sock.sendall(b"<14>first\n<14>unterminated")
        await inbox.wait_for_line("first")
        assert syslogd.stop() == 0
    message = await inbox.wait_for_line("unterminated")
    assert (message["facility"], message["severity"]) == ("user", "info")


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_with_the_syslogd_flag_queues_lines_consumable_over_http(
    broker_factory: Callable[..., Broker], workers: str
) -> None:
    port = free_port()
    broker = broker_factory("--syslogd", "--syslog-port", str(port), "--workers", workers)
    wait_until(lambda: tcp_accepts(port), 10, "syslog port open")
    text = unique("beside http")
    logger(port, "-T", "-p", "daemon.info", text)
    bodies: list[bytes] = []
    async with aiohttp.ClientSession() as http:

        async def taken() -> bool:
            async with http.get(f"{broker.url}/q/{QUEUE}") as response:
                if response.status == 200:
                    bodies.append(await response.read())
                return bool(bodies)

        await async_wait_until(taken, 15, "the line over HTTP")
    message = json.loads(json.loads(bodies[0])["value"])
    assert message["line"].endswith(text)
    assert (message["facility"], message["severity"]) == ("daemon", "info")
    assert broker.stop() == 0


@pytest.fixture
def own_valkey() -> Iterator[tuple[Callable[[], None], Callable[[], None], str]]:
    """A Valkey this test may stop and start again: (start, stop, url); short socket path."""
    folder = Path(tempfile.mkdtemp(prefix="rmq-", dir="/tmp"))
    sock = folder / "v.sock"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        args = [valkey_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder),
                "--save", "", "--appendonly", "no", "--logfile", str(folder / "valkey.log")]
        procs.append(subprocess.Popen(args))
        client = redis.Redis(unix_socket_path=str(sock))
        wait_until(lambda: _pings(client), 10, "valkey answers")
        client.close()

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)

    yield start, stop, f"unix://{sock}"
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
    shutil.rmtree(folder)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


async def test_lines_received_while_storage_is_down_are_stored_once_it_is_back(
    tmp_path: Path, own_valkey: tuple[Callable[[], None], Callable[[], None], str]
) -> None:
    start_valkey, stop_valkey, url = own_valkey
    start_valkey()
    port = free_port()
    args = ["syslogd", "--syslog-port", str(port), *storage_args(url, "rmqt-outage:")]
    daemon = Daemon(args, tmp_path / "syslogd.log").start(lambda: tcp_accepts(port))
    try:
        stop_valkey()
        lines = [unique(f"during the outage {n}") for n in range(10)]
        logger(port, "-T", stdin="\n".join(lines).encode())
        logger(port, "-d", lines[0] + " over udp")
        wait_until(lambda: "will retry" in daemon.log(), 10, "a failed write logged")
        assert daemon.alive()
        start_valkey()
        storage = open_storage(url, "rmqt-outage:", 2)
        await prepare(storage)
        try:
            messages = await Inbox(storage.store, QUEUE).wait_for(len(lines) + 1)
        finally:
            await storage.close()
        received = sorted(m["line"].rsplit("] ", 1)[-1] for m in messages)
        assert received == sorted([*lines, lines[0] + " over udp"])
    finally:
        assert daemon.stop() == 0, daemon.log()


async def test_the_pending_buffer_keeps_the_newest_messages_when_storage_stays_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = open_storage("redis://127.0.0.1:1/0", "rmqt-nowhere:", 1)  # nothing listens
    sink = Sink(storage.store, max_pending_bytes=100)
    sink.start()
    with caplog.at_level(logging.WARNING, "restmq.syslog"):
        for n in range(50):
            sink.put(QUEUE, [f"message-{n:02d}"])  # 10 bytes each: 10 fit
        assert sink.dropped == 40
        await async_wait_until(lambda: "will retry" in caplog.text, 10, "a failed write")
        await sink.close(0.2)
    await storage.close()
    assert "buffer full, dropped" in caplog.text
    assert "stopping with 10 messages not stored" in caplog.text
    assert (sink.stored, sink.dropped) == (0, 40)
