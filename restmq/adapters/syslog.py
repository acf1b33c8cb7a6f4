"""The syslog receiver (SPEC §5): TCP and UDP on one port, every message into ``syslogd:<ip>``.

How this works
--------------
* **TCP.** One :class:`~restmq.protocol.syslog.SyslogFramer` per connection splits the stream
  into frames, newline-framed or RFC 6587 octet-counted (detected per frame). A frame longer
  than ``syslog_max_line`` bytes is cut there and the rest of it skipped, so a connection never
  buffers more than that; a partial frame left when the sender disconnects is still queued.
* **UDP**, on the same port number: a datagram is one message, or several LF-separated ones
  that each start with ``<PRI>``; each is cut to the same maximum.
* **Messages.** Each frame goes through :func:`~restmq.protocol.syslog.parse_line` and becomes
  ``{"line", "host", "tstamp", "facility", "severity"}`` in queue ``syslogd:<sender ip>``
  (an IPv4-mapped IPv6 sender is written as plain IPv4). When the message has no header host or
  timestamp (Python's ``SysLogHandler`` sends a bare ``<14>text``; a malformed line has
  neither), ``host`` is the sender's IP and ``tstamp`` the receive time in ISO 8601 (UTC), as
  the original RestMQ filled them from the connection and the clock. A line that does not parse
  is queued all the same, with null facility and severity.
* **Writes.** The protocol callbacks never wait on Redis: each read or datagram hands its
  messages to the :class:`Sink`. Its one writer task takes everything pending, groups it per
  queue and adds each group with one script call per chunk of ``CHUNK`` messages (chunks of one
  queue in order, queues in parallel, all through the store's automatic pipelining), so a fast
  stream costs a round trip per batch, not per line.
* **Storage failures** never reach the listener. When Redis is unavailable the batch goes back
  to the front of the pending buffer and is retried with a backoff (0.1 s doubling up to 2 s)
  while receiving goes on. The buffer is bounded (``MAX_PENDING_BYTES``): beyond it the oldest
  messages are dropped, counted in ``Sink.dropped`` and logged as a warning, because a log
  collector must neither grow without bound nor block the programs that log to it (TCP back
  pressure would stall a ``SysLogHandler`` inside its application). A Redis error reply (a bug,
  not an outage) drops that chunk with an error log instead of retrying it forever. While Redis
  is flaky delivery is at least once: an add that timed out but ran is sent again.
* **Several workers** (``restmq serve --syslogd --workers N``): every worker opens the listener
  with ``SO_REUSEPORT``, as it does for HTTP, and the kernel spreads connections and senders
  (by address and port) over the workers, so the order of each connection is kept.
* **Stop.** :meth:`SyslogListener.close` stops accepting, closes the connections (their partial
  frames are queued) and gives the writer a bounded time to store what is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from restmq.config import Settings
from restmq.engine.connection import open_storage, prepare
from restmq.engine.store import QueueStore
from restmq.errors import OutcomeUnknown, StorageUnavailable
from restmq.protocol.syslog import SyslogFramer, SyslogRecord, parse_datagram, parse_line

__all__ = ["Sink", "SyslogListener", "queue_for", "serve_syslogd", "start_syslog"]

log = logging.getLogger("restmq.syslog")

CHUNK = 500  # messages per script call (add.lua unpacks them onto Lua's stack)
MAX_PENDING_BYTES = 32 * 1024 * 1024
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
CLOSE_TIMEOUT = 5.0  # seconds for connections to report closed on stop


def queue_for(sender: str) -> str:
    """The queue of one sender's messages."""
    return f"syslogd:{sender}"


class Sink:
    """A bounded buffer of (queue, message) drained into the store by one writer task."""

    def __init__(self, store: QueueStore, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self._store = store
        self._max_bytes = max_pending_bytes
        self._pending: deque[tuple[str, str]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()  # nothing pending yet
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.stored = 0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, queue: str, messages: list[str]) -> None:
        """Buffer messages for the writer; never blocks, never raises."""
        for message in messages:
            self._pending.append((queue, message))
            self._bytes += len(message)
        self._trim()
        self._idle.clear()
        self._ready.set()

    async def close(self, timeout: float) -> None:
        """Give the writer up to ``timeout`` seconds to store what is pending, then stop it."""
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                await self._idle.wait()
        except TimeoutError:
            lost = len(self._pending) + self._in_flight
            log.warning("syslog: stopping with %d messages not stored", lost)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _trim(self) -> None:
        dropped = 0
        while self._bytes > self._max_bytes and self._pending:
            self._bytes -= len(self._pending.popleft()[1])
            dropped += 1
        if dropped:
            self.dropped += dropped
            log.warning("syslog: buffer full, dropped %d oldest messages", dropped)

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            if not self._pending:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
            failed = await self._write(self._take_all())
            self._in_flight = 0
            if not failed:
                backoff = BACKOFF_FIRST
                continue
            self._pending.extendleft(reversed(failed))
            self._bytes += sum(len(message) for _, message in failed)
            self._trim()
            await asyncio.sleep(backoff)  # a retry backoff, not a wait for a condition
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _take_all(self) -> list[tuple[str, str]]:
        batch = list(self._pending)
        self._pending.clear()
        self._bytes = 0
        self._in_flight = len(batch)
        return batch

    async def _write(self, batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Store a batch; returns what must be retried."""
        groups: dict[str, list[str]] = {}
        for queue, message in batch:
            groups.setdefault(queue, []).append(message)
        left = await asyncio.gather(*(self._write_queue(q, ms) for q, ms in groups.items()))
        pairs = zip(groups, left, strict=True)
        return [(queue, message) for queue, rest in pairs for message in rest]

    async def _write_queue(self, queue: str, messages: list[str]) -> list[str]:
        """Add one queue's messages in order, a chunk per call; returns those to retry."""
        for start in range(0, len(messages), CHUNK):
            chunk = messages[start : start + CHUNK]
            try:
                await self._store.add(queue, chunk)
            except StorageUnavailable as exc:
                log.warning("syslog: storage unavailable (%s); will retry", exc.message)
                return messages[start:]
            except OutcomeUnknown:
                # Maybe stored: a retry could store them twice, so they count as sent (syslog
                # is at-most-once anyway, UDP most of all).
                log.warning("syslog: outcome unknown for %d messages for %s", len(chunk), queue)
                self.dropped += len(chunk)
                continue
            except Exception:
                log.exception("syslog: dropped %d messages for %s", len(chunk), queue)
                self.dropped += len(chunk)
                continue
            self.stored += len(chunk)
        return []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _message(record: SyslogRecord, sender: str, received: str) -> str:
    host, tstamp = record["host"], record["tstamp"]
    return json.dumps(
        {
            "line": record["line"],
            "host": sender if host is None else host,
            "tstamp": received if tstamp is None else tstamp,
            "facility": record["facility"],
            "severity": record["severity"],
        },
        ensure_ascii=False,
    )


def _sender_ip(peer: object) -> str:
    """The sender's address from a peername tuple; IPv4-mapped IPv6 becomes plain IPv4."""
    if not isinstance(peer, tuple) or not peer:
        return "unknown"
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return str(peer[0])
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped or address)


def _cut(record: SyslogRecord, max_line: int) -> SyslogRecord:
    raw = record["line"].encode("utf-8")
    if len(raw) > max_line:
        record["line"] = raw[:max_line].decode("utf-8", "ignore")
    return record


@dataclass(slots=True)
class _Receiver:
    """What the protocols of one listener share: the sink and the open connections."""

    sink: Sink
    max_line: int
    connections: set[asyncio.BaseTransport] = field(default_factory=set)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, sender: str, records: list[SyslogRecord]) -> None:
        if records:
            received = _now()
            self.sink.put(queue_for(sender), [_message(r, sender, received) for r in records])

    def opened(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(transport)
        self.all_closed.clear()

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self.connections.discard(transport)
        if not self.connections:
            self.all_closed.set()


class _StreamProtocol(asyncio.Protocol):
    """One TCP connection: bytes → frames → messages."""

    def __init__(self, receiver: _Receiver) -> None:
        self._receiver = receiver
        self._framer = SyslogFramer(receiver.max_line)
        self._sender = "unknown"
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._sender = _sender_ip(transport.get_extra_info("peername"))
        self._receiver.opened(transport)

    def data_received(self, data: bytes) -> None:
        self._deliver(self._framer.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self._deliver(self._framer.flush())
        if self._transport is not None:
            self._receiver.closed(self._transport)

    def _deliver(self, frames: list[bytes]) -> None:
        self._receiver.deliver(self._sender, [parse_line(frame) for frame in frames])


class _DatagramProtocol(asyncio.DatagramProtocol):
    """The UDP endpoint: each datagram → its messages."""

    def __init__(self, receiver: _Receiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        records = [_cut(record, self._receiver.max_line) for record in parse_datagram(data)]
        self._receiver.deliver(_sender_ip(addr), records)

    def error_received(self, exc: Exception) -> None:
        log.debug("syslog: udp error %s", exc)


@dataclass(slots=True)
class SyslogListener:
    """A running receiver: TCP server, UDP endpoint and the sink they feed."""

    server: asyncio.AbstractServer
    datagram: asyncio.BaseTransport
    receiver: _Receiver

    @property
    def sink(self) -> Sink:
        return self.receiver.sink

    async def close(self, flush_timeout: float) -> None:
        """Stop receiving, close connections, store what is pending (bounded), stop."""
        self.server.close()
        self.datagram.close()
        for transport in list(self.receiver.connections):
            transport.close()
        if self.receiver.connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.receiver.all_closed.wait()
        await self.sink.close(flush_timeout)


async def start_syslog(
    settings: Settings, store: QueueStore, *, reuse_port: bool = False
) -> SyslogListener:
    """Listen on ``settings.listen:settings.syslog_port``, TCP and UDP, feeding ``store``."""
    sink = Sink(store)
    receiver = _Receiver(sink, settings.syslog_max_line)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _StreamProtocol(receiver),
        settings.listen,
        settings.syslog_port,
        reuse_port=reuse_port,
        start_serving=False,  # TCP accepts only once UDP is bound too
    )
    try:
        datagram, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(receiver),
            local_addr=(settings.listen, settings.syslog_port),
            reuse_port=reuse_port,
        )
    except OSError:
        server.close()
        raise
    sink.start()
    await server.start_serving()
    log.info("syslog listening on tcp+udp %s:%d", settings.listen, settings.syslog_port)
    return SyslogListener(server, datagram, receiver)


async def serve_syslogd(settings: Settings, url: str, stop: asyncio.Event) -> None:
    """The syslog receiver alone (``restmq syslogd``) on the storage at ``url``, until ``stop``."""
    storage = open_storage(url, settings.prefix, settings.redis_pool, settings.request_timeout)
    try:
        await prepare(storage)
    except StorageUnavailable as exc:
        log.warning("storage not reachable yet (%s); buffering until it is", exc.message)
    try:
        listener = await start_syslog(settings, storage.store)
        await stop.wait()
        log.info("stopping syslog receiver")
        await listener.close(settings.shutdown_timeout)
    finally:
        await storage.close()
    log.info("stopped")
