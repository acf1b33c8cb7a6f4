"""Many comet consumers of one queue in a separate client process, and its handle.

``bench/streaming.py`` starts 2-4 of these so that the client side is not the limit. As a
script, it opens ``--consumers`` comet streams on ``--url`` (``--connect-concurrency`` at a
time), counts the messages each receives (one ``\\n`` per comet message) and reports on
stdout, one line per event:

- ``ready <connected> <failed>``: every stream was attempted (a connected stream has its
  headers, so the broker has registered the consumer);
- ``reached <m> <t>``: every connected stream has received at least ``m`` messages, the
  last of them at ``time.perf_counter()`` = t (CLOCK_MONOTONIC, comparable across the
  processes of one machine);
- ``closed <reason>``: a stream ended while it was expected to stay open;
- ``bye``: stdin was closed (or said ``quit``); every stream was closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import uvloop

STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=None)


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the new soft limit.

    Children inherit it, so the brokers started afterwards get it too.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Tally:
    """How far the streams of this process got, milestone by milestone."""

    consumers: int
    milestones: Sequence[int]
    connected: int = 0
    failed: int = 0
    reached: Counter[int] = field(default_factory=Counter)
    stopping: bool = False

    def advance(self, before: int, after: int) -> None:
        """One stream went from ``before`` to ``after`` messages."""
        for milestone in self.milestones:
            if before < milestone <= after:
                self.reached[milestone] += 1
                if self.reached[milestone] == self.connected:
                    say(f"reached {milestone} {time.perf_counter():.6f}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _consume(
    session: aiohttp.ClientSession, url: str, tally: Tally, gate: asyncio.Semaphore
) -> None:
    """One comet stream: connect (``gate`` bounds connects in progress), then count."""
    async with gate:
        try:
            response = await session.get(url, timeout=STREAM_TIMEOUT)
            response.raise_for_status()
        except (aiohttp.ClientError, OSError) as exc:
            tally.failed += 1
            _maybe_ready(tally)
            say(f"closed connect failed: {exc!r}")
            return
        tally.connected += 1
        _maybe_ready(tally)
    await _count(response, tally)


def _maybe_ready(tally: Tally) -> None:
    if tally.connected + tally.failed == tally.consumers:
        say(f"ready {tally.connected} {tally.failed}")


async def _count(response: aiohttp.ClientResponse, tally: Tally) -> None:
    count = 0
    try:
        async for chunk in response.content.iter_any():
            after = count + chunk.count(b"\n")
            tally.advance(count, after)
            count = after
        reason = "ended by the server"
    except (aiohttp.ClientError, OSError) as exc:
        reason = repr(exc)
    finally:
        response.close()
    if not tally.stopping:
        say(f"closed {reason} after {count} messages")


async def _wait_for_quit() -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"quit":
            return


async def hold(url: str, consumers: int, milestones: Sequence[int], concurrency: int) -> None:
    tally = Tally(consumers, sorted(milestones))
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        streams = [
            asyncio.create_task(_consume(session, url, tally, gate)) for _ in range(consumers)
        ]
        await _wait_for_quit()
        tally.stopping = True
        for stream in streams:
            stream.cancel()
        for stream in streams:
            with contextlib.suppress(asyncio.CancelledError):
                await stream
    say("bye")


class Crowd:
    """The parent's handle on one crowd process."""

    def __init__(self, url: str, consumers: int, milestones: Sequence[int], concurrency: int):
        self.url = url
        self.consumers = consumers
        self.milestones = milestones
        self.concurrency = concurrency
        self.closed: list[str] = []  # the streams that ended early, with their reason
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            os.path.abspath(__file__),
            "--url",
            self.url,
            "--consumers",
            str(self.consumers),
            "--milestones",
            ",".join(map(str, self.milestones)),
            "--connect-concurrency",
            str(self.concurrency),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def expect(self, word: str, timeout: float) -> list[str]:
        """The fields of the next line that starts with ``word`` (``closed`` lines are kept)."""
        assert self._proc is not None and self._proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self._proc.stdout.readline()
                if not raw:
                    raise RuntimeError(f"crowd {self.pid} exited while waiting for {word!r}")
                fields = raw.decode().split()
                if fields[0] == "closed":
                    self.closed.append(" ".join(fields[1:]))
                elif fields[0] == word:
                    return fields[1:]

    async def ready(self, timeout: float) -> int:
        """Wait until every stream was attempted; the number connected."""
        connected, _ = await self.expect("ready", timeout)
        return int(connected)

    async def reached(self, milestone: int, timeout: float) -> float:
        """When (perf_counter) every stream had ``milestone`` messages."""
        while True:
            fields = await self.expect("reached", timeout)
            if int(fields[0]) == milestone:
                return float(fields[1])

    async def stop(self, timeout: float = 30.0) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            await self.expect("bye", timeout)
            await asyncio.wait_for(self._proc.wait(), timeout)
        except (TimeoutError, RuntimeError):
            self._proc.kill()
            await self._proc.wait()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the comet URL, /c/<queue>")
    parser.add_argument("--consumers", type=int, required=True)
    parser.add_argument("--milestones", default="1", help="message counts to report, a,b,c")
    parser.add_argument("--connect-concurrency", type=int, default=64)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    raise_fd_limit()
    milestones = [int(m) for m in args.milestones.split(",") if m]
    uvloop.run(hold(args.url, args.consumers, milestones, args.connect_concurrency))


if __name__ == "__main__":
    main(sys.argv[1:])
